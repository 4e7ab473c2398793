//! `Map` and `Filter`: transforms over user closures.

use std::fmt;

use bytes::Bytes;
use weir::{BoxError, Transform};

/// Maps each chunk through a closure. A closure that returns an empty chunk
/// drops it (counted in [`StageReport::chunks_dropped`](weir::StageReport));
/// an error fails the ingestion.
///
/// ```
/// use bytes::Bytes;
/// use weir_transforms::Map;
///
/// let upper = Map::new("upper", |chunk: Bytes| Ok(Bytes::from(chunk.to_ascii_uppercase())));
/// # let _ = upper;
/// ```
pub struct Map<F> {
    name: String,
    map: F,
    offload: bool,
}

impl<F> Map<F>
where
    F: FnMut(Bytes) -> Result<Bytes, BoxError> + Send + 'static,
{
    /// A stage called `name` (for errors and metrics) running `map` inline.
    pub fn new(name: impl Into<String>, map: F) -> Self {
        Self {
            name: name.into(),
            map,
            offload: false,
        }
    }

    /// Runs the closure off the runtime's workers (see
    /// [`Transform::cpu_heavy`]), for closures that burn CPU.
    #[must_use]
    pub fn offload(mut self, offload: bool) -> Self {
        self.offload = offload;
        self
    }
}

impl<F> fmt::Debug for Map<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("name", &self.name)
            .field("offload", &self.offload)
            .finish_non_exhaustive()
    }
}

impl<F> Transform for Map<F>
where
    F: FnMut(Bytes) -> Result<Bytes, BoxError> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        let mapped = (self.map)(chunk)?;
        if !mapped.is_empty() {
            out.push(mapped);
        }
        Ok(())
    }

    fn cpu_heavy(&self) -> bool {
        self.offload
    }
}

/// Keeps the chunks for which a predicate returns `true` and drops the
/// others (counted in [`StageReport::chunks_dropped`](weir::StageReport)).
///
/// ```
/// use bytes::Bytes;
/// use weir_transforms::Filter;
///
/// let no_comments = Filter::new("no-comments", |chunk: &Bytes| !chunk.starts_with(b"#"));
/// # let _ = no_comments;
/// ```
pub struct Filter<F> {
    name: String,
    keep: F,
}

impl<F> Filter<F>
where
    F: FnMut(&Bytes) -> bool + Send + 'static,
{
    /// A stage called `name` (for errors and metrics) keeping the chunks
    /// for which `keep` returns `true`.
    pub fn new(name: impl Into<String>, keep: F) -> Self {
        Self {
            name: name.into(),
            keep,
        }
    }
}

impl<F> fmt::Debug for Filter<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F> Transform for Filter<F>
where
    F: FnMut(&Bytes) -> bool + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        if (self.keep)(&chunk) {
            out.push(chunk);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_replaces_and_an_empty_result_emits_nothing() {
        let mut map = Map::new("halve", |chunk: Bytes| Ok(chunk.slice(..chunk.len() / 2)));
        let mut out = Vec::new();
        map.transform(Bytes::from_static(b"abcd"), &mut out).unwrap();
        map.transform(Bytes::from_static(b"x"), &mut out).unwrap();
        assert_eq!(out, vec![Bytes::from_static(b"ab")]);
        assert_eq!(map.name(), "halve");
    }

    #[test]
    fn map_errors_are_returned() {
        let mut map = Map::new("fails", |_chunk: Bytes| Err("refused".into()));
        let error = map.transform(Bytes::from_static(b"a"), &mut Vec::new()).unwrap_err();
        assert_eq!(error.to_string(), "refused");
    }

    #[test]
    fn filter_keeps_what_the_predicate_accepts() {
        let mut filter = Filter::new("even", |chunk: &Bytes| chunk.len().is_multiple_of(2));
        let mut out = Vec::new();
        for chunk in ["ab", "c", "defg"] {
            filter.transform(Bytes::from(chunk), &mut out).unwrap();
        }
        assert_eq!(out, vec![Bytes::from("ab"), Bytes::from("defg")]);
    }
}
