//! The milestone write-ups: which file answers which milestone of the plan,
//! which generated parts of the report it shows, and the command that
//! reproduces each. `just publish` composes each write-up's generated block
//! (`figures/<stem>-results.md`) from the parts the sections recorded and
//! splices it into the write-up between its markers (see [`crate::splice`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::Error;
use crate::sections::{Figures, Part};

/// One part of a write-up's generated block.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// The part's key, as a section records it (`"<scenario>/<part>"`).
    pub key: &'static str,
    /// The command that produces the results it is drawn from; `just
    /// publish` then renders them.
    pub command: &'static str,
}

/// A milestone's write-up.
#[derive(Debug, Clone, Copy)]
pub struct WriteUp {
    /// Its file in `reports/`.
    pub file: &'static str,
    /// The plan's milestone it answers.
    pub milestone: &'static str,
    /// What it asks, for the index.
    pub title: &'static str,
    /// The generated parts it shows, in order.
    pub parts: &'static [Shown],
}

impl WriteUp {
    /// The published file its generated block is spliced from, relative to
    /// `reports/` (as its markers name it).
    pub fn results_name(&self) -> String {
        format!("figures/{}-results.md", self.file.trim_end_matches(".md"))
    }
}

const fn shown(key: &'static str, command: &'static str) -> Shown {
    Shown { key, command }
}

const FLOW_FULL: &str = "cargo run --release -p weir-lab -- run flow --full";
const FLOW_THROUGHPUT: &str = "cargo run --release -p weir-lab -- run flow --full --variant throughput";
const BENCH_ENGINE: &str = "cargo bench -p weir-benches --bench engine";
const CHAOS: &str = "cargo run --release -p weir-lab -- run chaos";
const VALIDATION: &str = "cargo run --release -p weir-lab -- run validation";
const CANCELLATION: &str = "cargo run --release -p weir-lab -- run cancellation";
const OFFLOAD: &str = "cargo run --release -p weir-lab -- run offload";
const DELIVERY: &str = "just nginx-install && cargo run --release -p weir-lab -- run delivery --full";
const DATASYNC: &str = "just pg-up && just nats-up && cargo run --release -p weir-lab -- run datasync --full";
const JETSTREAM: &str = "just pg-up && cargo run --release -p weir-lab -- run jetstream --full";

/// Every write-up, in the plan's order: Phase 1, Phase 2, then DataSync.
pub const WRITEUPS: &[WriteUp] = &[
    WriteUp {
        file: "ingestion-baseline.md",
        milestone: "Phase 1, Milestone 1",
        title: "The minimal pipeline's baseline against a raw loop",
        parts: &[
            shown("flow/throughput", FLOW_THROUGHPUT),
            shown("bench/engine_vs_raw", BENCH_ENGINE),
        ],
    },
    WriteUp {
        file: "backpressure.md",
        milestone: "Phase 1, Milestone 2",
        title: "Backpressure: what keeps memory flat, and what happens without it",
        parts: &[shown("flow/backpressure", FLOW_FULL)],
    },
    WriteUp {
        file: "atomic-ingestion.md",
        milestone: "Phase 1, Milestone 3",
        title: "The atomic invariant under generated failures, and the validation leak",
        parts: &[shown("chaos/sweep", CHAOS), shown("validation/matrix", VALIDATION)],
    },
    WriteUp {
        file: "cancellation.md",
        milestone: "Phase 1, Milestone 4",
        title: "Cancellation and client disconnects: how fast, and nothing written after",
        parts: &[
            shown("cancellation/random", CANCELLATION),
            shown("cancellation/disconnect", CANCELLATION),
        ],
    },
    WriteUp {
        file: "transforms.md",
        milestone: "Phase 1, Milestone 5",
        title: "Transforms: what a checksum stage costs against a plain hasher loop",
        parts: &[shown("offload/checksums", OFFLOAD)],
    },
    WriteUp {
        file: "offload.md",
        milestone: "Phase 1, Milestone 6",
        title: "A CPU-heavy stage inline vs offloaded: runtime lag and throughput",
        parts: &[shown("offload/stage", OFFLOAD), shown("offload/pools", OFFLOAD)],
    },
    WriteUp {
        file: "graceful-shutdown.md",
        milestone: "Phase 1, Milestone 7",
        title: "Graceful shutdown: draining active ingestions on SIGTERM",
        parts: &[shown("cancellation/shutdown", CANCELLATION)],
    },
    WriteUp {
        file: "delivery-basic.md",
        milestone: "Phase 2, Milestone 1",
        title: "Basic delivery: fast-client throughput against nginx and tower-http",
        parts: &[shown("delivery/comparison", DELIVERY), shown("delivery/rows", DELIVERY)],
    },
    WriteUp {
        file: "delivery-flow-control.md",
        milestone: "Phase 2, Milestone 2",
        title: "Delivery flow control: what slow clients cost the server",
        parts: &[
            shown("delivery/slow-rss", DELIVERY),
            shown("delivery/per-connection", DELIVERY),
        ],
    },
    WriteUp {
        file: "delivery-transforms.md",
        milestone: "Phase 2, Milestone 3",
        title: "Transforms during delivery: compressed responses for slow and fast clients",
        parts: &[shown("delivery/compressed", DELIVERY)],
    },
    WriteUp {
        file: "delivery-ranges.md",
        milestone: "Phase 2, Milestone 4",
        title: "Range requests: every range checked, requests per second against nginx and tower-http",
        parts: &[shown("delivery/ranges", DELIVERY)],
    },
    WriteUp {
        file: "delivery-disconnects.md",
        milestone: "Phase 2, Milestone 5",
        title: "Delivery under client disconnects: descriptors and memory after a storm, uploads cut off",
        parts: &[shown("delivery/storm", DELIVERY), shown("delivery/uploads", DELIVERY)],
    },
    WriteUp {
        file: "delivery-observability.md",
        milestone: "Phase 2, Milestone 6",
        title: "Observability while serving: runtime lag per phase, identity against compressed",
        parts: &[shown("delivery/lag", DELIVERY), shown("delivery/compressed", DELIVERY)],
    },
    WriteUp {
        file: "datasync.md",
        milestone: "DataSync",
        title: "DataSync: API to PostgreSQL, exactly once, against every baseline and over JetStream",
        parts: &[
            shown("datasync/jobs", DATASYNC),
            shown("datasync/ceiling", DATASYNC),
            shown("datasync/cpu", DATASYNC),
            shown("datasync/scale", DATASYNC),
            shown("jetstream/faults", JETSTREAM),
        ],
    },
];

/// The generated block of `writeup` from the recorded `parts`: each part,
/// then its machine, date, revision and command; a part with no results in
/// this report says so and names the command that produces it.
pub(crate) fn compose(writeup: &WriteUp, parts: &BTreeMap<&'static str, Part>) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "<!-- generated by `just publish` (weir-reports); spliced into {}; do not edit -->\n",
        writeup.file
    );
    for shown in writeup.parts {
        match parts.get(shown.key) {
            Some(part) => {
                let _ = writeln!(md, "{}\n", part.markdown.trim_end());
                let _ = writeln!(
                    md,
                    "*Measured on {}. Reproduce: `{}`, then `just publish`.*\n",
                    part.note, shown.command
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "*The published run had no results for this part (`{}`); `{}`, then `just publish`, produces \
                     them.*\n",
                    shown.key, shown.command
                );
            }
        }
    }
    md
}

/// With `figures.publish` set: writes every write-up's generated block and
/// splices it into the write-up when its file exists.
pub(crate) fn publish(figures: &Figures<'_>) -> Result<(), Error> {
    for writeup in WRITEUPS {
        let block = compose(writeup, &figures.parts);
        if let Some(path) = figures.publish_markdown(&writeup.results_name(), &block)?
            && let Some(dir) = path.parent().and_then(std::path::Path::parent)
        {
            let doc = dir.join(writeup.file);
            if doc.is_file() {
                crate::splice::splice_file(&doc, &writeup.results_name(), &block)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sections' sources, where the parts are recorded.
    const SECTION_SOURCES: &[&str] = &[
        include_str!("sections/bench.rs"),
        include_str!("sections/cancellation.rs"),
        include_str!("sections/chaos.rs"),
        include_str!("sections/datasync.rs"),
        include_str!("sections/delivery.rs"),
        include_str!("sections/flow.rs"),
        include_str!("sections/jetstream.rs"),
        include_str!("sections/offload.rs"),
        include_str!("sections/validation.rs"),
    ];

    #[test]
    fn every_write_up_has_a_distinct_file_and_parts_a_section_records() {
        let mut files: Vec<&str> = WRITEUPS.iter().map(|w| w.file).collect();
        files.sort_unstable();
        files.dedup();
        assert_eq!(files.len(), WRITEUPS.len(), "two write-ups share a file");
        for w in WRITEUPS {
            assert!(!w.parts.is_empty(), "{} shows no generated part", w.file);
            for shown in w.parts {
                let call = format!("part(\"{}\"", shown.key);
                assert!(
                    SECTION_SOURCES.iter().any(|source| source.contains(&call)),
                    "{} shows part {}, which no section records (`figures.{call}, ...)`)",
                    w.file,
                    shown.key
                );
            }
        }
    }

    #[test]
    fn a_missing_part_names_its_command_and_a_present_one_its_provenance() {
        let writeup = &WRITEUPS[0];
        let mut parts = BTreeMap::new();
        let block = compose(writeup, &parts);
        for shown in writeup.parts {
            assert!(block.contains(shown.command), "{block}");
            assert!(block.contains("had no results"), "{block}");
        }
        parts.insert(
            writeup.parts[0].key,
            Part {
                markdown: "| a |\n|---|\n".into(),
                note: "machine X | date | rev abc".into(),
            },
        );
        let block = compose(writeup, &parts);
        assert!(block.contains("| a |\n|---|\n\n*Measured on machine X | date | rev abc. Reproduce: `"));
    }
}
