//! Figures of the `jetstream` scenario: the distributed DataSync job under
//! real faults (worker processes killed and stopped, the queue's leader
//! node killed and restarted).

use serde::{Deserialize, Serialize};

/// One injected fault and how long the job took to get past it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultRecovery {
    /// What was done: `kill`, `kill-between-commit-and-ack`, `leader-kill`
    /// or `stop`.
    pub kind: String,
    /// Seconds from the load's start.
    pub at_s: f64,
    /// The work item the worker held, when it held one.
    pub item: Option<String>,
    /// Seconds from the fault to the recovery: the held item acked (by
    /// whichever worker took it), or, when no item was held (and for the
    /// leader's loss), the next ack of any item. `None`: never seen.
    pub recovery_s: Option<f64>,
}

/// Variant `faults`: the fault run's counts, recoveries and verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetstreamFaults {
    /// Events in the log.
    pub events: u64,
    /// Work items planned.
    pub items: u64,
    /// Worker processes running at a time.
    pub workers: u64,
    /// Workers SIGKILLed (all kinds).
    pub kills: u64,
    /// Of those, kills between an item's commit and its ack.
    pub commit_ack_kills: u64,
    /// The queue's leader node SIGKILLed (and restarted).
    pub leader_kills: u64,
    /// Workers SIGSTOPped for longer than `ack_wait`, then resumed.
    pub stops: u64,
    /// Every fault, in order.
    pub faults: Vec<FaultRecovery>,
    /// The slowest recovery, seconds.
    pub recovery_max_s: Option<f64>,
    /// The median recovery, seconds.
    pub recovery_median_s: Option<f64>,
    /// Faults never recovered from (no ack seen after them).
    pub unrecovered: u64,
    /// Acks of items that had been delivered before.
    pub redelivered_acks: u64,
    /// Items found already committed when taken again (the kills between
    /// commit and ack): acked without new rows.
    pub already_done: u64,
    /// From planning to the last ack, seconds.
    pub elapsed_s: f64,
    /// Events per second over that time, faults included.
    pub events_per_s: f64,
    /// Items the workers' consumer had still to deliver or see acked at the
    /// end (0 when every item was acked).
    pub queue_left: u64,
    /// The stored ids and dead letters equal the log's (minus malformed
    /// events, which are the dead letters), with no duplicates.
    pub exact: bool,
    /// What differed, when not exact.
    pub problem: Option<String>,
}
