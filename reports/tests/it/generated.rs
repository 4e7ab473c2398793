//! Committed documents show the committed generated markdown: figures in
//! the README and the write-ups are generated, so a hand edit or a stale
//! paste fails here. Every generated block of README.md and of every
//! document in `reports/` is found by its markers, not listed by hand; and
//! every write-up the registry names exists, carries its block, and is
//! linked from the report index and from README.md.

use std::path::{Path, PathBuf};

use weir_reports::splice;
use weir_reports::writeups::WRITEUPS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// README.md and every markdown document directly in `reports/`.
fn documents() -> Vec<PathBuf> {
    let reports = root().join("reports");
    let mut docs: Vec<PathBuf> = std::fs::read_dir(&reports)
        .expect("reports/ lists")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    docs.push(root().join("README.md"));
    docs
}

/// The source names of a document's generated blocks, in order.
fn blocks(doc: &str) -> Vec<String> {
    let (before, after) = splice::begin("\u{0}")
        .split_once('\u{0}')
        .map(|(b, a)| (b.to_owned(), a.to_owned()))
        .unwrap();
    doc.lines()
        .filter_map(|line| {
            line.strip_prefix(before.as_str())?
                .strip_suffix(after.as_str())
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn generated_blocks_match_what_just_publish_published() {
    let mut checked = 0;
    for doc in documents() {
        let text = read(&doc);
        let dir = doc.parent().expect("a document has a directory");
        for name in blocks(&text) {
            let source = dir.join(&name);
            let published = read(&source);
            let spliced = splice::splice(&text, &name, &published)
                .unwrap_or_else(|e| panic!("{}'s block for {name} is broken: {e}", doc.display()));
            assert!(
                spliced == text,
                "{}'s generated block differs from {}; run `just publish` (it splices it in) instead of editing \
                 either by hand",
                doc.display(),
                source.display()
            );
            checked += 1;
        }
    }
    assert!(checked > WRITEUPS.len(), "only {checked} generated blocks found");
}

#[test]
fn every_write_up_exists_shows_its_block_and_is_linked_from_both_indexes() {
    let index = read(&root().join("reports/README.md"));
    let readme = read(&root().join("README.md"));
    for writeup in WRITEUPS {
        let path = root().join("reports").join(writeup.file);
        let text = read(&path);
        assert!(
            blocks(&text).contains(&writeup.results_name()),
            "{} has no generated block for {}",
            writeup.file,
            writeup.results_name()
        );
        assert!(
            index.contains(&format!("]({})", writeup.file)),
            "reports/README.md does not link {}",
            writeup.file
        );
        assert!(
            readme.contains(&format!("](reports/{})", writeup.file)),
            "README.md does not link reports/{}",
            writeup.file
        );
    }
}

#[test]
fn every_document_in_reports_is_a_registered_write_up_or_an_index() {
    for doc in documents() {
        let name = doc.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if doc.parent() != Some(root().join("reports").as_path()) {
            continue;
        }
        assert!(
            matches!(name, "README.md" | "README-snippet.md" | "gates.md") || WRITEUPS.iter().any(|w| w.file == name),
            "reports/{name} is not in weir_reports::writeups::WRITEUPS: register it, so that `just publish` fills it"
        );
    }
}
