//! loom model of the stop signal's gate: wakes from another thread racing
//! the loop's looks are never lost. A task that has looked for the last time
//! sleeps until woken, so any wake still unseen after that look must have
//! notified the task since the look began.

use std::sync::Arc;
use std::task::{Wake, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::stop::Gate;

/// The loop's task: counts its notifications.
#[derive(Default)]
struct Task {
    notified: AtomicUsize,
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.notified.fetch_add(1, Ordering::SeqCst);
    }
}

fn model(wakes: usize, looks: usize) {
    loom::model(move || {
        let gate = Arc::new(Gate::default());
        let task = Arc::new(Task::default());
        let waker = Waker::from(Arc::clone(&task));
        let waking = Arc::clone(&gate);
        let waker_thread = thread::spawn(move || {
            for _ in 0..wakes {
                waking.wake_up();
            }
        });
        let mut last_look_began = 0;
        for _ in 0..looks {
            last_look_began = task.notified.load(Ordering::SeqCst);
            let _ = gate.look(&waker);
        }
        waker_thread.join().unwrap();
        if gate.is_woken() {
            assert!(
                task.notified.load(Ordering::SeqCst) > last_look_began,
                "a wake after the last look reached nobody"
            );
        }
    });
}

#[test]
fn one_wake_races_one_look() {
    model(1, 1);
}

#[test]
fn two_wakes_race_two_looks() {
    model(2, 2);
}

#[test]
fn three_wakes_race_three_looks() {
    model(3, 3);
}
