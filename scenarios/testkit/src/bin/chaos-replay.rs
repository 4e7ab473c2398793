//! `chaos-replay SEED [memory|file|null]`: re-runs exactly the case a seed
//! names, prints its schedule, result and any violation, and exits 1 if the
//! invariant broke.

use std::process::ExitCode;

use weir_testkit::{CaseOutcome, FailureSchedule, FileTarget, MemoryTarget, NullTarget, run_case};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(seed) = args.next().and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("usage: chaos-replay SEED [memory|file|null]  (SEED is the u64 a failing case printed)");
        return ExitCode::from(2);
    };
    let targets: Vec<String> = match args.next() {
        Some(t) => vec![t],
        None => vec!["memory".into(), "file".into(), "null".into()],
    };
    let schedule = FailureSchedule::from_seed(seed);
    println!("seed {seed}\nschedule {schedule}");
    let mut broken = false;
    for name in targets {
        let outcome: CaseOutcome = match name.as_str() {
            "memory" => run_case(&schedule, &mut MemoryTarget::default()),
            "file" => run_case(&schedule, &mut FileTarget::new()),
            "null" => run_case(&schedule, &mut NullTarget),
            other => {
                eprintln!("unknown sink `{other}`: expected memory, file or null");
                return ExitCode::from(2);
            }
        };
        println!("[{name}] result: {}", outcome.result);
        if outcome.holds() {
            println!("[{name}] invariant holds");
        } else {
            broken = true;
            for v in &outcome.violations {
                println!("[{name}] VIOLATION: {v}");
            }
        }
    }
    if broken { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
