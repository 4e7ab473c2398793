//! loom models of the registry's gate: admissions racing a shutdown's
//! close. No ingestion may slip past the drain: each one is either refused
//! or admitted and then counted before the drain sees the registry idle.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

use crate::registry::{Ended, Gate};

fn model(admitters: usize) {
    loom::model(move || {
        let gate = Arc::new(Gate::default());
        let ran: Vec<Arc<AtomicBool>> = (0..admitters).map(|_| Arc::new(AtomicBool::new(false))).collect();
        let mut threads = Vec::new();
        for flag in &ran {
            let gate = gate.clone();
            let flag = flag.clone();
            threads.push(thread::spawn(move || {
                if gate.admit() {
                    // The ingestion runs, then ends.
                    flag.store(true, Ordering::SeqCst);
                    gate.finish(Ended::Committed);
                }
            }));
        }
        // The shutdown: close, then drain until idle.
        let shutdown_gate = gate.clone();
        let drainer = thread::spawn(move || {
            shutdown_gate.close();
            loop {
                let state = shutdown_gate.snapshot();
                if state.active == 0 {
                    return state;
                }
                thread::yield_now();
            }
        });
        for t in threads {
            t.join().unwrap();
        }
        let drained = drainer.join().unwrap();
        let end = gate.snapshot();
        // Every admitter was either refused or completed.
        assert_eq!(end.completed + end.refused, admitters as u64);
        // Whatever ran had finished by the time the drain saw it idle, or
        // was refused; nothing admitted after the close.
        let admitted_after_close = end.completed - drained.completed;
        assert_eq!(admitted_after_close, 0, "an ingestion slipped past the drain");
        let ran_count = ran.iter().filter(|f| f.load(Ordering::SeqCst)).count() as u64;
        assert_eq!(ran_count, end.completed);
        assert_eq!(end.active, 0);
        assert!(end.closed);
    });
}

#[test]
fn one_admission_races_the_close() {
    model(1);
}

#[test]
fn two_admissions_race_the_close() {
    model(2);
}
