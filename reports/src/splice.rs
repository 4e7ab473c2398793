//! Keeps a document's generated block equal to the markdown `just publish`
//! published: the README shows `reports/README-snippet.md`, the
//! backpressure write-up `reports/figures/flow-results.md`. The block sits
//! between a `begin generated: <name>` line and an `end generated` line;
//! a test fails when a committed document has drifted from its source.

use std::path::Path;

use crate::Error;

/// The line that closes a generated block.
pub const END: &str = "<!-- end generated -->";

/// The line that opens the block generated from `name` (the published
/// file, as the document's reader would find it).
pub fn begin(name: &str) -> String {
    format!("<!-- begin generated: {name}, spliced by `just publish`; do not edit -->")
}

/// The snippet without its own header comment (the first line, when it is
/// an HTML comment) and the blank lines around it.
pub fn snippet_body(snippet: &str) -> &str {
    let body = match snippet.split_once('\n') {
        Some((first, rest)) if first.trim_start().starts_with("<!--") => rest,
        _ => snippet,
    };
    body.trim_matches('\n')
}

/// `doc` with the text between [`begin`]`(name)` and [`END`] replaced by
/// the snippet's body.
///
/// # Errors
///
/// [`Error::Splice`] when either marker is missing, or they are out of
/// order: the document is then left to a person, never guessed at.
pub fn splice(doc: &str, name: &str, snippet: &str) -> Result<String, Error> {
    let missing = |what: &str| Error::Splice(format!("no `{what}` line"));
    let begin_line = begin(name);
    let begin = doc.find(&begin_line).ok_or_else(|| missing(&begin_line))?;
    let after_begin = begin + begin_line.len();
    let end = doc[after_begin..]
        .find(END)
        .map(|at| after_begin + at)
        .ok_or_else(|| missing(END))?;
    let mut out = String::with_capacity(doc.len() + snippet.len());
    out.push_str(&doc[..after_begin]);
    out.push_str("\n\n");
    out.push_str(snippet_body(snippet));
    out.push_str("\n\n");
    out.push_str(&doc[end..]);
    Ok(out)
}

/// Splices `snippet` (published as `name`) into the document at `path`;
/// returns whether the file changed.
///
/// # Errors
///
/// When the document cannot be read or written, or lacks the markers.
pub fn splice_file(path: &Path, name: &str, snippet: &str) -> Result<bool, Error> {
    let io = |what: &str| weir_harness::io_error(format!("{what} {}", path.display()));
    let doc = std::fs::read_to_string(path).map_err(io("reading"))?;
    let spliced = splice(&doc, name, snippet).map_err(|e| match e {
        Error::Splice(why) => Error::Splice(format!("{}: {why}", path.display())),
        other => other,
    })?;
    if spliced == doc {
        return Ok(false);
    }
    std::fs::write(path, spliced).map_err(io("writing"))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNIPPET: &str = "<!-- generated; do not edit -->\n\n![chart](a.svg)\n\n| a |\n|---|\n";

    #[test]
    fn the_block_between_the_markers_is_replaced_and_the_rest_kept() {
        let b = begin("x.md");
        let doc = format!("# title\n\nintro\n\n{b}\n\nold figure\n\n{END}\n\nafter\n");
        let spliced = splice(&doc, "x.md", SNIPPET).unwrap();
        assert_eq!(
            spliced,
            format!("# title\n\nintro\n\n{b}\n\n![chart](a.svg)\n\n| a |\n|---|\n\n{END}\n\nafter\n")
        );
        assert_eq!(
            splice(&spliced, "x.md", SNIPPET).unwrap(),
            spliced,
            "splicing twice changes nothing"
        );
        assert!(
            splice(&doc, "y.md", SNIPPET).is_err(),
            "another source's block is not this one"
        );
    }

    #[test]
    fn missing_or_misordered_markers_are_errors() {
        let b = begin("x.md");
        for doc in [
            "no markers at all".to_owned(),
            format!("{b}\nonly the beginning"),
            format!("{END}\nthe end first\n{b}\n"),
        ] {
            let error = splice(&doc, "x.md", SNIPPET).unwrap_err();
            assert!(error.to_string().contains("no `"), "{error}");
        }
    }

    #[test]
    fn a_snippet_without_a_header_is_taken_whole() {
        assert_eq!(snippet_body("\n| a |\n\n"), "| a |");
        assert_eq!(snippet_body("<!-- x -->\n\nbody\n"), "body");
    }
}
