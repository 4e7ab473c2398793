//! Keeps the README's generated block equal to the published snippet
//! (`reports/README-snippet.md`): `weir-lab report --readme README.md`
//! splices the snippet between two markers, and a test fails when the
//! committed README has drifted from the committed snippet.

use std::path::Path;

use crate::Error;

/// The line that opens the README's generated block.
pub const BEGIN: &str = "<!-- begin generated: reports/README-snippet.md, spliced by `just report`; do not edit -->";
/// The line that closes the README's generated block.
pub const END: &str = "<!-- end generated -->";

/// The snippet without its own header comment (the first line, when it is
/// an HTML comment) and the blank lines around it.
pub fn snippet_body(snippet: &str) -> &str {
    let body = match snippet.split_once('\n') {
        Some((first, rest)) if first.trim_start().starts_with("<!--") => rest,
        _ => snippet,
    };
    body.trim_matches('\n')
}

/// `readme` with the text between [`BEGIN`] and [`END`] replaced by the
/// snippet's body.
///
/// # Errors
///
/// [`Error::Readme`] when either marker is missing, or they are out of
/// order: the README is then left to a person, never guessed at.
pub fn splice(readme: &str, snippet: &str) -> Result<String, Error> {
    let missing = |what: &str| Error::Readme(format!("no `{what}` line in the README"));
    let begin = readme.find(BEGIN).ok_or_else(|| missing(BEGIN))?;
    let after_begin = begin + BEGIN.len();
    let end = readme[after_begin..]
        .find(END)
        .map(|at| after_begin + at)
        .ok_or_else(|| missing(END))?;
    let mut out = String::with_capacity(readme.len() + snippet.len());
    out.push_str(&readme[..after_begin]);
    out.push_str("\n\n");
    out.push_str(snippet_body(snippet));
    out.push_str("\n\n");
    out.push_str(&readme[end..]);
    Ok(out)
}

/// Splices `snippet` into the README at `path`; returns whether the file
/// changed.
///
/// # Errors
///
/// When the README cannot be read or written, or lacks the markers.
pub fn splice_file(path: &Path, snippet: &str) -> Result<bool, Error> {
    let io = |what: &str| {
        let context = format!("{what} {}", path.display());
        move |source| Error::Io { context, source }
    };
    let readme = std::fs::read_to_string(path).map_err(io("reading"))?;
    let spliced = splice(&readme, snippet)?;
    if spliced == readme {
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
        let readme = format!("# title\n\nintro\n\n{BEGIN}\n\nold figure\n\n{END}\n\nafter\n");
        let spliced = splice(&readme, SNIPPET).unwrap();
        assert_eq!(
            spliced,
            format!("# title\n\nintro\n\n{BEGIN}\n\n![chart](a.svg)\n\n| a |\n|---|\n\n{END}\n\nafter\n")
        );
        assert_eq!(
            splice(&spliced, SNIPPET).unwrap(),
            spliced,
            "splicing twice changes nothing"
        );
    }

    #[test]
    fn missing_or_misordered_markers_are_errors() {
        for readme in [
            "no markers at all".to_owned(),
            format!("{BEGIN}\nonly the beginning"),
            format!("{END}\nthe end first\n{BEGIN}\n"),
        ] {
            let error = splice(&readme, SNIPPET).unwrap_err();
            assert!(error.to_string().contains("no `"), "{error}");
        }
    }

    #[test]
    fn a_snippet_without_a_header_is_taken_whole() {
        assert_eq!(snippet_body("\n| a |\n\n"), "| a |");
        assert_eq!(snippet_body("<!-- x -->\n\nbody\n"), "body");
    }
}
