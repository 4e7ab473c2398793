//! Objects from an `object_store` store, served under `/objects/` through
//! weir-object-store's ranged-read source: same ranges, validators,
//! throttling and accounting as files.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::{TryStreamExt, stream};
use headers::ETag;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use weir_object_store::ObjectStoreSource;

use crate::path::Refusal;
use crate::source::{ByteStream, RangeOpen, Representation};

/// Bytes per ranged read: the source keeps at most two reads in memory per
/// transfer, so this bounds what a stalled client pins (with hyper's queue).
const REQUEST_SIZE: u64 = 256 << 10;

/// The object key a URL path (below `/objects/`, still encoded) names:
/// segments decoded one by one, refused when empty, `.`, `..` or hiding a
/// separator, exactly as file paths are.
pub(crate) fn object_path(encoded: &str) -> Result<Path, Refusal> {
    let relative = crate::path::relative_path(encoded)?;
    let parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_str().map(str::to_owned).ok_or(Refusal::NotFound))
        .collect::<Result<_, _>>()?;
    Ok(Path::from_iter(parts))
}

/// Looks the object up: its size, `ETag` and modification time.
pub(crate) async fn representation(store: &Arc<dyn ObjectStore>, location: Path) -> Result<Representation, Refusal> {
    let meta = match store.head(&location).await {
        Ok(meta) => meta,
        Err(object_store::Error::NotFound { .. }) => return Err(Refusal::NotFound),
        Err(error) => return Err(Refusal::Io(io::Error::other(error))),
    };
    let etag = meta.e_tag.as_deref().and_then(entity_tag);
    let opener = ObjectOpener {
        store: Arc::clone(store),
        location,
    };
    Ok(Representation::new(meta.size, opener)
        .with_etag(etag)
        .with_last_modified(Some(SystemTime::from(meta.last_modified))))
}

/// A store's `ETag` as an HTTP entity tag: stores that give a bare token
/// (the local filesystem's `inode-mtime-size`) get it quoted.
fn entity_tag(e_tag: &str) -> Option<ETag> {
    if e_tag.starts_with('"') || e_tag.starts_with("W/\"") {
        e_tag.parse().ok()
    } else {
        format!("\"{e_tag}\"").parse().ok()
    }
}

#[derive(Debug)]
struct ObjectOpener {
    store: Arc<dyn ObjectStore>,
    location: Path,
}

impl RangeOpen for ObjectOpener {
    fn open(&self, range: Range<u64>, chunk_size: usize) -> io::Result<ByteStream> {
        let builder = ObjectStoreSource::builder(Arc::clone(&self.store), self.location.clone())
            .range(range)
            .chunk_size(chunk_size)
            .request_size(REQUEST_SIZE.max(chunk_size as u64));
        // The source opens (a HEAD, then conditional ranged GETs) when the
        // body first asks for bytes.
        let opened = stream::once(async move { builder.open().await.map_err(weir_object_store::Error::into_io) });
        Ok(Box::pin(opened.try_flatten()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_like_paths_and_tags_are_quoted() {
        assert_eq!(object_path("a/b%20c").unwrap().as_ref(), "a/b c");
        for bad in ["", "..", "a/../b", "a%2fb", "a//b"] {
            assert!(object_path(bad).is_err(), "{bad}");
        }
        let mut headers = http::HeaderMap::new();
        headers::HeaderMapExt::typed_insert(&mut headers, entity_tag("abc-1").unwrap());
        assert_eq!(headers["etag"], "\"abc-1\"");
        headers::HeaderMapExt::typed_insert(&mut headers, entity_tag("W/\"x\"").unwrap());
        assert_eq!(headers["etag"], "W/\"x\"");
    }
}
