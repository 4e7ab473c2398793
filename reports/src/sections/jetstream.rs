//! The jetstream section: the DataSync job over JetStream workers under
//! real faults (`weir-lab run jetstream`): what was injected, whether the
//! load ended exact, and the time to recover from each fault. Read as the
//! typed figures of `weir_harness::figures::jetstream`.

use std::fmt::Write as _;

use weir_harness::ScenarioResult;
use weir_harness::figures::jetstream::JetstreamFaults;

use super::{Figures, Section, newest_per_variant};
use crate::Error;
use crate::markdown;
use crate::model::Table;

pub(crate) const SECTION: Section = Section {
    scenario: "jetstream",
    title: "DataSync over NATS JetStream under faults: kills, a lost leader, a stopped worker",
    render,
};

fn seconds(x: Option<f64>) -> String {
    x.map_or_else(|| "never".to_owned(), |s| format!("{s:.2} s"))
}

/// One row per fault, in order.
fn faults_table(f: &JetstreamFaults) -> Table {
    let mut table = Table::new(["#", "fault", "at", "item the worker held", "recovered after"]);
    for (n, fault) in f.faults.iter().enumerate() {
        table.row([
            (n + 1).to_string(),
            fault.kind.clone(),
            format!("{:.2} s", fault.at_s),
            fault.item.clone().unwrap_or_else(|| "-".to_owned()),
            seconds(fault.recovery_s),
        ]);
    }
    table
}

fn render(results: &[ScenarioResult], figures: &mut Figures<'_>) -> Result<String, Error> {
    let newest = newest_per_variant(results);
    let Some(run) = newest.get("faults") else {
        return Ok("No results; run `weir-lab run jetstream` (needs `just pg-up`; starts its own cluster).\n".to_owned());
    };
    let mut md = String::new();
    let Some(f) = run.figures::<JetstreamFaults>() else {
        let _ = writeln!(md, "The fault run carries no figures: {}.\n", run.outcome);
        return Ok(md);
    };
    let verdict = if f.exact && f.queue_left == 0 {
        "exact: the stored ids and dead letters equal the log's, no duplicates, every item acked".to_owned()
    } else {
        format!(
            "NOT exact ({} items left on the queue; {})",
            f.queue_left,
            f.problem.as_deref().unwrap_or("the ids matched")
        )
    };
    let _ = writeln!(
        md,
        "{events} events planned into {items} work items on a 3-replica work queue of a 3-node cluster of the \
         run's own; {workers} worker processes at a time. Injected: {kills} worker SIGKILLs ({commit_ack} \
         between an item's commit and its ack), {leader} SIGKILL of the queue's leader node (restarted 2 s \
         later), {stops} SIGSTOP of a worker for longer than `ack_wait` (then resumed). Outcome: {verdict}. \
         {already} items were found committed when taken again and acked without new rows; {redelivered} acks \
         were of redelivered items. The load took {elapsed:.1} s ({rate:.0} events/s, faults included).\n",
        events = f.events,
        items = f.items,
        workers = f.workers,
        kills = f.kills,
        commit_ack = f.commit_ack_kills,
        leader = f.leader_kills,
        stops = f.stops,
        already = f.already_done,
        redelivered = f.redelivered_acks,
        elapsed = f.elapsed_s,
        rate = f.events_per_s,
    );
    let _ = writeln!(
        md,
        "Recovery: a fault that hit a worker holding an item is over when that item is acked (by whichever \
         worker took it again: a dead or stopped worker's item comes back after `ack_wait`, {ack_wait} ms \
         here); a fault that hit no item, and the leader's loss, at the next ack of any item. Median \
         {median}, slowest {max}, {unrecovered} never recovered.\n\n{table}",
        ack_wait = run.params.get("ack_wait_ms").and_then(serde_json::Value::as_u64).unwrap_or_default(),
        median = seconds(f.recovery_median_s),
        max = seconds(f.recovery_max_s),
        unrecovered = f.unrecovered,
        table = markdown::table(&faults_table(&f)),
    );
    let _ = writeln!(md, "{}", figures.gates.verdicts("jetstream", results));
    Ok(figures.part("jetstream/faults", [*run], md))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_harness::figures::jetstream::FaultRecovery;

    fn fault(kind: &str, at_s: f64, item: Option<&str>, recovery_s: Option<f64>) -> FaultRecovery {
        FaultRecovery {
            kind: kind.to_owned(),
            at_s,
            item: item.map(str::to_owned),
            recovery_s,
        }
    }

    #[test]
    fn the_section_lists_every_fault_its_recovery_and_the_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let mut run = ScenarioResult::new("jetstream", "faults");
        run.params.insert("ack_wait_ms".into(), serde_json::json!(3000));
        run.set_figures(&JetstreamFaults {
            events: 300_000,
            items: 30,
            workers: 3,
            kills: 2,
            commit_ack_kills: 1,
            leader_kills: 1,
            stops: 0,
            faults: vec![
                fault("kill-between-commit-and-ack", 1.0, Some("faults/1"), Some(2.96)),
                fault("kill", 1.5, None, None),
                fault("leader-kill", 4.9, None, Some(0.32)),
            ],
            recovery_max_s: Some(2.96),
            recovery_median_s: Some(2.96),
            unrecovered: 1,
            elapsed_s: 23.4,
            events_per_s: 12_820.7,
            exact: true,
            ..JetstreamFaults::default()
        });
        let md = render(&[run], &mut figures).unwrap();
        assert!(md.contains("2 worker SIGKILLs (1 between"), "{md}");
        assert!(md.contains("Outcome: exact"), "{md}");
        assert!(md.contains("| 1 | kill-between-commit-and-ack | 1.00 s | faults/1 | 2.96 s |"), "{md}");
        assert!(md.contains("| 2 | kill | 1.50 s | - | never |"), "{md}");
        assert!(md.contains("3000 ms here"), "{md}");
        assert!(md.contains("1 never recovered"), "{md}");
        assert!(md.contains("(12821 events/s"), "{md}");
    }

    #[test]
    fn a_wrong_load_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut figures = Figures::for_test(dir.path());
        let mut run = ScenarioResult::new("jetstream", "faults");
        run.set_figures(&JetstreamFaults {
            queue_left: 2,
            problem: Some("3 ids missing".to_owned()),
            ..JetstreamFaults::default()
        });
        let md = render(&[run], &mut figures).unwrap();
        assert!(md.contains("NOT exact (2 items left on the queue; 3 ids missing)"), "{md}");
        assert!(render(&[], &mut figures).unwrap().contains("No results"));
    }
}
