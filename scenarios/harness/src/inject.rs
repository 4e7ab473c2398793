//! A lab-only switch that injects known regressions, to prove that the
//! gates catch what they are meant to catch (`reports/gates.md`). It lives
//! in the lab's harness and is read only by scenario code: the engine and
//! the other products have no such switch in any build.
//!
//! `WEIR_LAB_INJECT=throughput,memory` (either or both) in the environment
//! of `weir-lab`, which reads it once and carries it in the scenario's
//! parameters to the code (and the child processes) that measure:
//!
//! - `throughput`: the flow scenario's file -> `NullSink` engine side
//!   copies every chunk twice before the sink sees it (accidental copies in
//!   the hot path), which costs far more than 15% of that ratio.
//! - `memory`: the flow scenario's flat-memory runs hold a ballast of three
//!   fifths of the process's resident memory at their start, touched page
//!   by page, for the whole run. The start is nearly all of the peak (6.9
//!   of 7.2 MiB), so the peak its regression guard bounds rises by at least
//!   half.

/// The environment variable that turns injections on.
pub const ENV: &str = "WEIR_LAB_INJECT";

/// Which regressions to inject. Read once from [`ENV`] by the lab and
/// carried to the measuring code (and its child processes) in the
/// scenario's parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Injection {
    /// Copy every chunk on the flow throughput's file -> null engine side.
    pub throughput: bool,
    /// Hold +50% resident memory through the flow flat-memory runs.
    pub memory: bool,
}

impl Injection {
    /// What [`ENV`] asks for; nothing when it is unset. Unknown words are
    /// reported on stderr and ignored.
    pub fn from_env() -> Self {
        std::env::var(ENV).map_or_else(|_| Self::default(), |text| Self::parse(&text))
    }

    /// Parses a comma-separated list of `throughput` and `memory`.
    pub fn parse(text: &str) -> Self {
        let mut injection = Self::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "throughput" => injection.throughput = true,
                "memory" => injection.memory = true,
                other => eprintln!("{ENV}: unknown injection {other:?} (expected throughput or memory)"),
            }
        }
        injection
    }

    /// Whether anything is injected.
    pub fn any(self) -> bool {
        self.throughput || self.memory
    }

    /// With `memory` on: a ballast of three fifths of the current resident memory,
    /// every page written so that it is resident; hold it for the run.
    pub fn ballast(self) -> Option<Vec<u8>> {
        self.memory.then(|| {
            let size = usize::try_from(crate::current_rss() * 3 / 5).unwrap_or(0);
            let mut ballast = vec![0u8; size];
            for page in ballast.chunks_mut(4096) {
                page[0] = 1;
            }
            ballast
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_turn_injections_on() {
        assert_eq!(Injection::parse(""), Injection::default());
        assert!(!Injection::parse("").any());
        let both = Injection::parse("throughput, memory");
        assert!(both.throughput && both.memory);
        assert_eq!(
            Injection::parse("memory,bogus"),
            Injection {
                throughput: false,
                memory: true
            }
        );
    }

    #[test]
    fn the_ballast_is_resident() {
        let before = crate::current_rss();
        let ballast = Injection::parse("memory").ballast().unwrap();
        assert!(ballast.len() as u64 >= before * 3 / 5 - 4096);
        assert!(crate::current_rss() >= before + ballast.len() as u64 / 2);
        assert_eq!(Injection::default().ballast(), None);
    }
}
