//! Committed documents show the committed generated markdown: figures in
//! the README and the write-ups are generated, so a hand edit or a stale
//! paste fails here.

use std::path::Path;

use weir_reports::splice;

/// Each document with a generated block, and the published file (as named
/// in its markers, relative to the document) whose body it must show.
const DOCUMENTS: &[(&str, &str, &str)] = &[
    ("README.md", "reports/README-snippet.md", "reports/README-snippet.md"),
    (
        "reports/backpressure.md",
        "figures/flow-results.md",
        "reports/figures/flow-results.md",
    ),
];

#[test]
fn generated_blocks_match_what_just_report_published() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (doc, name, source) in DOCUMENTS {
        let text = std::fs::read_to_string(root.join(doc)).unwrap_or_else(|e| panic!("reading {doc}: {e}"));
        let published = std::fs::read_to_string(root.join(source)).unwrap_or_else(|e| panic!("reading {source}: {e}"));
        let spliced = splice::splice(&text, name, &published)
            .unwrap_or_else(|e| panic!("{doc} has no generated block for {name}: {e}"));
        assert!(
            spliced == text,
            "{doc}'s generated block differs from {source}; run `just report` (it splices it in) instead of editing \
             either by hand"
        );
    }
}
