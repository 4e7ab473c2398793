//! The committed README shows the committed snippet: figures in the README
//! are generated, so a hand edit or a stale paste fails here.

use std::path::Path;

use weir_reports::readme;

#[test]
fn readme_generated_block_matches_the_published_snippet() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("README.md")).expect("reading README.md");
    let snippet = std::fs::read_to_string(root.join("reports/README-snippet.md")).expect("reading the snippet");
    let spliced = readme::splice(&text, &snippet).expect("README.md has the generated block's markers");
    assert!(
        spliced == text,
        "README.md's generated block differs from reports/README-snippet.md; run `just report` (it splices the \
         snippet in) instead of editing either by hand"
    );
}
