//! `multipart/byteranges` bodies (RFC 9110 14.6): part headers and part
//! bytes, each part's source opened only when the previous one is done, so a
//! multi-range response holds one source at a time.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::Stream;
use http::HeaderValue;

use crate::source::{ByteStream, RangeOpen};

/// A boundary of 32 hex digits from the process's random hasher keys: it
/// cannot be predicted by a client, so it will not occur in served bytes by
/// anything but chance (2^-128 per position).
pub(crate) fn boundary() -> String {
    let state = RandomState::new();
    let mut a = state.build_hasher();
    a.write_u8(1);
    let mut b = state.build_hasher();
    b.write_u8(2);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

/// The parts of one multipart response, with its exact length.
#[derive(Debug)]
pub(crate) struct Multipart {
    boundary: String,
    parts: Vec<(Bytes, Range<u64>)>,
    trailer: Bytes,
    len: u64,
}

impl Multipart {
    /// Lays out `ranges` of a representation of `total` bytes.
    pub(crate) fn new(ranges: &[Range<u64>], total: u64, content_type: &HeaderValue) -> Self {
        let boundary = boundary();
        let content_type = String::from_utf8_lossy(content_type.as_bytes()).into_owned();
        let mut len = 0u64;
        let parts: Vec<(Bytes, Range<u64>)> = ranges
            .iter()
            .enumerate()
            .map(|(i, range)| {
                let lead = if i == 0 { "" } else { "\r\n" };
                let head = format!(
                    "{lead}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{total}\r\n\r\n",
                    range.start,
                    range.end - 1
                );
                len += head.len() as u64 + (range.end - range.start);
                (Bytes::from(head), range.clone())
            })
            .collect();
        let trailer = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        len += trailer.len() as u64;
        Self {
            boundary,
            parts,
            trailer,
            len,
        }
    }

    /// The exact body length.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The response's `Content-Type`.
    pub(crate) fn content_type(&self) -> HeaderValue {
        HeaderValue::try_from(format!("multipart/byteranges; boundary={}", self.boundary))
            .unwrap_or_else(|_| HeaderValue::from_static("multipart/byteranges"))
    }

    /// The body as one stream.
    pub(crate) fn into_stream(self, opener: Arc<dyn RangeOpen>, chunk_size: usize) -> ByteStream {
        Box::pin(PartsStream {
            opener,
            chunk_size,
            parts: self.parts.into(),
            trailer: Some(self.trailer),
            current: None,
        })
    }
}

struct PartsStream {
    opener: Arc<dyn RangeOpen>,
    chunk_size: usize,
    parts: VecDeque<(Bytes, Range<u64>)>,
    trailer: Option<Bytes>,
    current: Option<ByteStream>,
}

impl Stream for PartsStream {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(current) = this.current.as_mut() {
            match ready!(current.as_mut().poll_next(cx)) {
                Some(item) => return Poll::Ready(Some(item)),
                // Part done: drop its source (and handle) before the next.
                None => this.current = None,
            }
        }
        let Some((head, range)) = this.parts.pop_front() else {
            return Poll::Ready(this.trailer.take().map(Ok));
        };
        let len = range.end - range.start;
        match this.opener.open(range, this.chunk_size) {
            Ok(stream) => {
                this.current = Some(Box::pin(crate::source::bounded(stream, len)));
                Poll::Ready(Some(Ok(head)))
            }
            Err(error) => {
                this.parts.clear();
                this.trailer = None;
                Poll::Ready(Some(Err(error)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt;

    use super::*;

    #[derive(Debug)]
    struct Letters;

    impl RangeOpen for Letters {
        fn open(&self, range: Range<u64>, _: usize) -> io::Result<ByteStream> {
            let bytes: Vec<u8> = range.map(|i| b'a' + (i % 26) as u8).collect();
            Ok(Box::pin(futures_util::stream::iter([Ok(Bytes::from(bytes))])))
        }
    }

    #[tokio::test]
    async fn the_layout_matches_rfc_9110_and_the_announced_length() {
        let content_type = HeaderValue::from_static("text/plain");
        let multipart = Multipart::new(&[0..3, 24..26], 26, &content_type);
        let boundary = multipart.boundary.clone();
        let len = multipart.len();
        assert!(multipart.content_type().to_str().unwrap().ends_with(&boundary));
        let body: Vec<Bytes> = multipart
            .into_stream(Arc::new(Letters), 4096)
            .try_collect()
            .await
            .unwrap();
        let body = String::from_utf8(body.concat()).unwrap();
        assert_eq!(body.len() as u64, len);
        let expected = format!(
            "--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-2/26\r\n\r\nabc\r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 24-25/26\r\n\r\nyz\r\n--{boundary}--\r\n"
        );
        assert_eq!(body, expected);
        assert_ne!(boundary, super::boundary());
    }
}
