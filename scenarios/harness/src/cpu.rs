//! CPU time of processes, from `/proc` (Linux): what a scenario spent, and
//! what a server it talks to (PostgreSQL, a child process) spent, so that a
//! throughput can be put against the CPU it cost.

/// The fields of `/proc/<pid>/stat` after the command name (which may hold
/// spaces), starting with field 3 (the state).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    // The state is a letter: keep the numeric fields' positions with a 0.
    Some(
        after
            .split_whitespace()
            .map(|field| field.parse().unwrap_or(0))
            .collect(),
    )
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / rustix::param::clock_ticks_per_second() as f64
}

/// User plus system CPU time of every thread of `pid` so far, seconds;
/// with `children`, plus that of its children that have ended and been
/// waited for. `None` when the process is gone (or not on Linux).
pub fn cpu_seconds(pid: u32, children: bool) -> Option<f64> {
    let fields = stat_fields(pid)?;
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    // utime, stime are fields 14 and 15; cutime, cstime 16 and 17.
    let mut ticks = field(14) + field(15);
    if children {
        ticks += field(16) + field(17);
    }
    Some(ticks_to_seconds(ticks))
}

/// The processes whose parent is `pid` now.
pub fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| stat_fields(child).and_then(|f| f.get(1).copied()) == Some(u64::from(pid)))
        .collect()
}

/// CPU time of a server process tree so far, seconds: the parent, its ended
/// children (as the parent waited for them) and its live children. Sampled
/// before and after a run, the difference is what the server spent on it,
/// short-lived children (a connection's backend) included.
pub fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    let own = cpu_seconds(pid, true)?;
    let live: f64 = child_pids(pid)
        .into_iter()
        .filter_map(|child| cpu_seconds(child, true))
        .sum();
    Some(own + live)
}

/// The 1-minute load average (`/proc/loadavg`), recorded with results: on
/// a shared machine it says how much else was running. `None` off Linux.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The command name of `pid` (`/proc/<pid>/comm`).
pub fn process_name(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_owned())
}

/// The parent of `pid` (for a PostgreSQL backend: the postmaster).
pub fn parent_pid(pid: u32) -> Option<u32> {
    let fields = stat_fields(pid)?;
    // ppid is field 4.
    u32::try_from(*fields.get(1)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_spends_cpu_and_has_no_stat_when_gone() {
        let pid = std::process::id();
        let before = cpu_seconds(pid, false).unwrap();
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(cpu_seconds(pid, false).unwrap() > before, "{x}");
        assert!(cpu_seconds(u32::MAX, false).is_none());
    }

    #[test]
    fn a_child_is_found_and_counted_in_the_tree() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let pid = std::process::id();
        assert!(child_pids(pid).contains(&child.id()));
        // Own time first: it keeps growing, and the tree read after it
        // includes it.
        let own = cpu_seconds(pid, true).unwrap();
        assert!(tree_cpu_seconds(pid).unwrap() >= own);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!child_pids(pid).contains(&child.id()));
    }

    #[test]
    fn a_child_knows_its_parent() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        assert_eq!(parent_pid(child.id()), Some(std::process::id()));
        assert_eq!(process_name(child.id()).as_deref(), Some("sleep"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(parent_pid(u32::MAX), None);
    }
}
