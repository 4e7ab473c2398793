//! The figures the seed documents (`shared/seeds/`: the Node.js library
//! weir grew from, and its DataSync job) published, quoted as claims so that
//! a write-up can set weir's measured figure for the same experiment beside
//! each. They are the seed's words, not measurements of this project: the
//! generated line says so, and says how the setups differ.

/// One figure a seed document published.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// The seed document it comes from.
    pub source: &'static str,
    /// The figure, as the seed states it.
    pub figure: &'static str,
    /// The seed's setup, and how weir's experiment differs.
    pub setup: &'static str,
}

/// The Node library's "flat memory proof" table.
pub const FLAT_MEMORY: Claim = Claim {
    source: "the Node library's README",
    figure: "45 MB RSS at 100 MB, 48 MB at 1 GB, 52 MB at 10 GB",
    setup: "the seed: Node v20 reading a file with a read stream, its sink and how RSS was sampled not described; \
            weir: a seeded synthetic source into `NullSink`, RSS sampled every 10 ms during the run",
};

/// The Node library's Milestone 2, controlled flow.
pub const CONTROLLED: Claim = Claim {
    source: "the Node library's Milestone 2",
    figure: "flat at about 155 MB RSS with backpressure",
    setup: "the seed: a 200 MB to 1 GB file into a sink that waits 50 to 200 ms per write, RSS of the whole Node \
            process; weir: the slow device model of the Method section (a far larger speed mismatch), RSS of the \
            whole process",
};

/// The Node library's Milestone 2, unbounded flow.
pub const UNBOUNDED: Claim = Claim {
    source: "the Node library's Milestone 2",
    figure: "250 to 300 MB RSS and rising without backpressure (a 1 GB file, 200 ms per write)",
    setup: "the seed's loop fires writes without awaiting them and its file stream still buffers; weir's unbounded \
            variant spawns every write as a task and reads on, so nothing holds the source back",
};

/// The seed DataSync job's performance profile.
pub const DATASYNC: Claim = Claim {
    source: "the seed DataSync job's README",
    figure: "about 4,000 to 8,000 events/s (network dependent)",
    setup: "a remote API over the network into PostgreSQL through a TSV buffer and one COPY; weir: a mock API with \
            injected faults on loopback, the same machine running API, job and PostgreSQL",
};

/// The Node library's Milestone 3 success metric.
pub const LEAKED_FDS: Claim = Claim {
    source: "the Node library's Milestone 3",
    figure: "0 leaked file descriptors, 100% cleanup even on invalid input (verified by its tests)",
    setup: "its own tests on its engine; weir: every row of the validation matrix counts the process's descriptors \
            before and after",
};

/// `claim` beside weir's measured figure, as one markdown list item.
pub fn beside(claim: &Claim, weir: &str) -> String {
    format!(
        "- **The seed's claim** ({}): {}. **weir, measured:** {weir}. *Setups:* {}.\n",
        claim.source, claim.figure, claim.setup
    )
}
