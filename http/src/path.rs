//! Request paths to files under the served root, with no way out: segments
//! are percent-decoded one by one and refused if they are `.`/`..` or hide a
//! separator, and the file is opened with `openat2(RESOLVE_BENEATH)` so the
//! kernel refuses any symlink or `..` that would leave the root (a
//! canonicalize-and-compare fallback where `openat2` is unavailable).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Why a path is not served.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No such servable file (also for malformed and traversal-shaped paths:
    /// they name nothing under the root). `404`.
    NotFound,
    /// It exists but leaves the root (a symlink out) or may not be read. `403`.
    Forbidden,
    /// Anything else. `500`.
    Io(io::Error),
}

/// The relative path a URL path (below the route prefix, still encoded)
/// names, or `NotFound` when it cannot name a file under the root.
pub(crate) fn relative_path(encoded: &str) -> Result<PathBuf, Refusal> {
    if encoded.is_empty() {
        return Err(Refusal::NotFound);
    }
    let mut path = PathBuf::new();
    for segment in encoded.split('/') {
        let decoded = percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| Refusal::NotFound)?;
        let refused = decoded.is_empty() || decoded == "." || decoded == ".." || decoded.contains(['/', '\\', '\0']);
        if refused {
            return Err(Refusal::NotFound);
        }
        path.push(decoded.as_ref());
    }
    Ok(path)
}

/// The served directory, held open.
#[derive(Debug)]
pub(crate) struct Root {
    dir: File,
    canonical: PathBuf,
}

impl Root {
    /// Opens `path`, which must be a directory.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let canonical = path.canonicalize()?;
        let dir = File::open(&canonical)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "the served root is not a directory",
            ));
        }
        Ok(Self { dir, canonical })
    }

    /// Opens the regular file at `relative` beneath the root.
    pub(crate) fn open_file(&self, relative: &Path) -> Result<File, Refusal> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let mut attempts = 0;
        let file = loop {
            attempts += 1;
            match rustix::fs::openat2(&self.dir, relative, flags, Mode::empty(), resolve) {
                Ok(fd) => break File::from(fd),
                // A concurrent rename under the root: the kernel asks to retry.
                Err(Errno::AGAIN) if attempts < 3 => {}
                Err(Errno::NOSYS | Errno::PERM) if attempts == 1 => return self.open_file_portable(relative),
                Err(errno) => return Err(refusal(errno.into())),
            }
        };
        regular(file)
    }

    /// Opens the directory at `relative` beneath the root (the root itself
    /// for an empty path) to create a file in, with the same containment
    /// as [`open_file`](Self::open_file).
    pub(crate) fn open_dir(&self, relative: &Path) -> Result<File, Refusal> {
        if relative.as_os_str().is_empty() {
            return self.dir.try_clone().map_err(Refusal::Io);
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match rustix::fs::openat2(&self.dir, relative, flags, Mode::empty(), resolve) {
                Ok(fd) => return Ok(File::from(fd)),
                Err(Errno::AGAIN) if attempts < 3 => {}
                Err(Errno::NOSYS | Errno::PERM) if attempts == 1 => {
                    let resolved = self.canonical.join(relative).canonicalize().map_err(refusal)?;
                    if !resolved.starts_with(&self.canonical) {
                        return Err(Refusal::Forbidden);
                    }
                    return File::open(&resolved).map_err(refusal);
                }
                Err(errno) => return Err(refusal(errno.into())),
            }
        }
    }

    /// The fallback for kernels without `openat2` (before 5.6, or filtered):
    /// resolve, check the result is under the root, open without following a
    /// final symlink. A directory swapped for a symlink between the check and
    /// the open could escape; `openat2` has no such window.
    pub(crate) fn open_file_portable(&self, relative: &Path) -> Result<File, Refusal> {
        let resolved = self.canonical.join(relative).canonicalize().map_err(refusal)?;
        if !resolved.starts_with(&self.canonical) {
            return Err(Refusal::Forbidden);
        }
        let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(i32::try_from(flags.bits()).unwrap_or(0))
            .open(&resolved)
            .map_err(refusal)?;
        regular(file)
    }
}

/// Only regular files are served: not directories, FIFOs, sockets, devices.
fn regular(file: File) -> Result<File, Refusal> {
    match file.metadata() {
        Ok(meta) if meta.is_file() => Ok(file),
        Ok(_) => Err(Refusal::NotFound),
        Err(error) => Err(Refusal::Io(error)),
    }
}

fn refusal(error: io::Error) -> Refusal {
    match Errno::from_io_error(&error) {
        // EXDEV: RESOLVE_BENEATH refused to leave the root; ELOOP: a symlink
        // where none may be (NOFOLLOW, magic links).
        Some(Errno::XDEV | Errno::LOOP | Errno::ACCESS | Errno::PERM) => Refusal::Forbidden,
        Some(Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG) => Refusal::NotFound,
        _ => Refusal::Io(error),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn traversal_shaped_paths_name_nothing() {
        for bad in [
            "", "..", "a/../b", "%2e%2e", "%2E%2E/x", "a%2fb", "a%2Fb", "a%5cb", "a\\b", "a//b", "./a", "a/.", "a%00b",
            "%ff", "a/",
        ] {
            assert!(
                matches!(relative_path(bad), Err(Refusal::NotFound)),
                "{bad:?} was accepted"
            );
        }
        assert_eq!(relative_path("dir/a%20b.bin").unwrap(), Path::new("dir/a b.bin"));
        assert_eq!(relative_path("...").unwrap(), Path::new("..."));
    }

    #[test]
    fn symlinks_out_of_the_root_are_forbidden_both_ways() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        std::fs::write(root_dir.path().join("inside"), b"i").unwrap();
        std::fs::create_dir(root_dir.path().join("sub")).unwrap();
        symlink(outside.path().join("secret"), root_dir.path().join("out-file")).unwrap();
        symlink(outside.path(), root_dir.path().join("out-dir")).unwrap();
        symlink("inside", root_dir.path().join("in-link")).unwrap();
        symlink("/proc/self/root/etc/hostname", root_dir.path().join("magic")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        for open in [Root::open_file, Root::open_file_portable] {
            assert!(open(&root, Path::new("inside")).is_ok());
            assert!(open(&root, Path::new("in-link")).is_ok());
            assert!(matches!(open(&root, Path::new("out-file")), Err(Refusal::Forbidden)));
            assert!(matches!(
                open(&root, Path::new("out-dir/secret")),
                Err(Refusal::Forbidden)
            ));
            assert!(matches!(open(&root, Path::new("magic")), Err(Refusal::Forbidden)));
            assert!(matches!(open(&root, Path::new("sub")), Err(Refusal::NotFound)));
            assert!(matches!(open(&root, Path::new("missing")), Err(Refusal::NotFound)));
            assert!(matches!(open(&root, Path::new("inside/x")), Err(Refusal::NotFound)));
        }
    }
}
