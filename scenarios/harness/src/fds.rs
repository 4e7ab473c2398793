//! Open file descriptor counting, for leak checks.

/// The number of file descriptors this process has open, from
/// `/proc/self/fd` (0 where that does not exist).
///
/// Counts are exact only when nothing else in the process opens files
/// meanwhile: tests that compare counts run one per process (nextest).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count().saturating_sub(1)) // the directory handle itself
        .unwrap_or(0)
}
