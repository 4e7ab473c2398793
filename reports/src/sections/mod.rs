//! The report index's sections, one file per scenario.
//!
//! To add one: write `src/sections/<scenario>.rs` with a
//! `pub(crate) const SECTION: Section`, and add its name to the
//! `sections!` line below. Scenarios without a section get a generic table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use weir_gate::{Gate, GateFile};
use weir_harness::{ScenarioResult, io_error};

use crate::Error;
use crate::markdown;
use crate::model::{Chart, Table};
use crate::render;

macro_rules! sections {
    ($($name:ident),* $(,)?) => {
        $(mod $name;)*
        /// Every registered section, in index order.
        pub(crate) const SECTIONS: &[Section] = &[$($name::SECTION),*];
    };
}

sections!(
    flow,
    cancellation,
    validation,
    delivery,
    offload,
    datasync,
    jetstream,
    chaos,
    bench
);

/// One scenario's part of the report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Section {
    /// The scenario whose results it renders.
    pub scenario: &'static str,
    /// Heading.
    pub title: &'static str,
    /// Renders the section's markdown (without its heading) from the
    /// scenario's results, writing its charts through `figures`.
    pub render: fn(&[ScenarioResult], &mut Figures<'_>) -> Result<String, Error>,
}

/// Where a section's charts and published files go.
#[derive(Debug)]
pub(crate) struct Figures<'a> {
    /// The report directory (`reports/out`); charts go to its `figures/`.
    pub out: &'a Path,
    /// The write-ups' directory (`reports/`), when publishing.
    pub publish: Option<&'a Path>,
    /// The sections' parts of the README block (the flow figure and its
    /// tables); `render` adds the headline table and publishes it.
    pub readme: String,
    /// The gates whose verdicts the sections show.
    pub gates: Gates,
    /// The named parts the sections published for the write-ups (see
    /// [`crate::writeups`]), by key.
    pub parts: BTreeMap<&'static str, Part>,
}

/// A piece of a section's markdown that a write-up shows (its figures and
/// tables), with the provenance of the results it was drawn from.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// The markdown (figure links relative to the write-ups' directory).
    pub markdown: String,
    /// Machine, date and revision of the newest result it was drawn from.
    pub note: String,
}

/// The gates file the report judges results with: the one verdict system.
#[derive(Debug)]
pub(crate) struct Gates {
    /// Its name, for the reader.
    pub path: String,
    /// Its gates; `None` when there was no file.
    pub file: Option<GateFile>,
}

impl Gates {
    /// The gates of `scenario`, in file order.
    fn of(&self, scenario: &str) -> Vec<&Gate> {
        self.file
            .iter()
            .flat_map(|f| &f.gates)
            .filter(|g| g.scenario == scenario)
            .collect()
    }

    /// The verdicts of the gates on `scenario` over its `results`, as
    /// markdown: how many pass, and the gate table. Says so when no gate
    /// bounds the scenario or there is no gates file.
    pub fn verdicts(&self, scenario: &str, results: &[ScenarioResult]) -> String {
        if self.file.is_none() {
            return format!("No gates file at `{}`: these results are not judged.\n", self.path);
        }
        let file = GateFile {
            gates: self.of(scenario).into_iter().cloned().collect(),
        };
        if file.gates.is_empty() {
            return format!("No gate in `{}` bounds this scenario.\n", self.path);
        }
        let verdicts = weir_gate::evaluate(&file, results);
        let passed = verdicts.iter().filter(|v| v.pass).count();
        format!(
            "Gates (`{}`, the same verdicts as `just gate`, before re-measuring a breach): {passed} of {} pass.\n\n{}",
            self.path,
            verdicts.len(),
            weir_gate::table(&verdicts)
        )
    }

    /// The bound (`max`, else `min`) of the first gate on `scenario`'s
    /// `metric` (and `variant`, when given), for prose that cites it.
    pub fn bound(&self, scenario: &str, variant: Option<&str>, metric: &str) -> Option<f64> {
        self.of(scenario)
            .into_iter()
            .find(|g| g.metric == metric && variant.is_none_or(|v| g.variant.as_deref() == Some(v)))
            .and_then(|g| g.max.or(g.min))
    }
}

impl Figures<'_> {
    /// Draws `chart` as `figures/<name>.svg` and `.png` in the report (and,
    /// when `published`, copies both into the write-ups' `figures/`), and
    /// returns the markdown that shows it in the index.
    pub fn chart(&mut self, name: &str, alt: &str, chart: &Chart, published: bool) -> Result<String, Error> {
        let dir = self.out.join("figures");
        create_dir(&dir)?;
        render::write_chart(chart, &dir.join(name))?;
        if published && let Some(publish) = self.publish {
            let target = publish.join("figures");
            create_dir(&target)?;
            for ext in ["svg", "png"] {
                let file = format!("{name}.{ext}");
                std::fs::copy(dir.join(&file), target.join(&file))
                    .map_err(io_error(format!("copying {file} to {}", target.display())))?;
            }
        }
        Ok(format!("![{alt}](figures/{name}.svg)\n"))
    }

    /// Records `markdown`, drawn from `results`, as the part `key` of the
    /// write-ups (see [`crate::writeups::WRITEUPS`]), and returns it for the
    /// index.
    pub fn part<'r>(
        &mut self,
        key: &'static str,
        results: impl IntoIterator<Item = &'r ScenarioResult>,
        markdown: String,
    ) -> String {
        let owned: Vec<ScenarioResult> = results.into_iter().cloned().collect();
        // Criterion's estimates record no revision: their note says so
        // ("rev unknown") rather than borrow another result's.
        let note = crate::provenance(&owned);
        self.parts.insert(
            key,
            Part {
                markdown: markdown.clone(),
                note,
            },
        );
        markdown
    }

    /// Writes a generated markdown file into the write-ups' directory
    /// (`path` relative to it), when publishing; returns where.
    pub fn publish_markdown(&self, path: &str, text: &str) -> Result<Option<PathBuf>, Error> {
        let Some(publish) = self.publish else {
            return Ok(None);
        };
        let target = publish.join(path);
        if let Some(parent) = target.parent() {
            create_dir(parent)?;
        }
        std::fs::write(&target, text).map_err(io_error(format!("writing {}", target.display())))?;
        Ok(Some(target))
    }
}

#[cfg(test)]
impl<'a> Figures<'a> {
    /// Charts into `out`, nothing published, a fixed note, the committed
    /// gates.
    pub fn for_test(out: &'a Path) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gates.toml");
        Self {
            out,
            publish: None,
            readme: String::new(),
            parts: BTreeMap::new(),
            gates: Gates {
                path: "gates.toml".into(),
                file: Some(GateFile::load(&path).expect("the committed gates file loads")),
            },
        }
    }
}

/// The newest result of each variant (by start time), keyed by variant:
/// sections show one row per variant even when a results directory holds
/// several runs.
pub(crate) fn newest_per_variant(results: &[ScenarioResult]) -> BTreeMap<&str, &ScenarioResult> {
    let mut newest: BTreeMap<&str, &ScenarioResult> = BTreeMap::new();
    for r in results {
        let entry = newest.entry(r.variant.as_str()).or_insert(r);
        if r.started_unix_s > entry.started_unix_s {
            *entry = r;
        }
    }
    newest
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
    Ok(())
}

/// The table shown for a scenario without a section of its own.
pub(crate) fn generic(results: &[ScenarioResult]) -> String {
    let mut table = Table::new([
        "variant",
        "outcome",
        "bytes",
        "elapsed",
        "throughput",
        "peak RSS",
        "lag p99",
    ]);
    for r in results {
        table.row([
            r.variant.clone(),
            r.outcome.clone(),
            markdown::bytes(r.bytes),
            format!("{:.2} s", r.elapsed_s),
            markdown::rate(r.throughput_bps),
            markdown::bytes(r.rss.peak_bytes),
            r.lag
                .as_ref()
                .map_or_else(|| "-".to_owned(), |l| markdown::millis(l.p99_us)),
        ]);
    }
    markdown::table(&table)
}
