//! Compressed delivery: `Accept-Encoding` negotiation of zstd and gzip, and
//! the encoded body, compressed on the fly by weir-transforms' [`Compress`]
//! inside a [`weir::ingest`] whose sink is a one-slot channel to the
//! response body.
//!
//! # Backpressure and memory
//!
//! The ingestion reads the next chunk only once its write (a send into the
//! one-slot channel) completed, and hyper pulls from the channel only while
//! its write buffer has room. A client that stops reading therefore holds
//! one chunk in the channel, one in the ingestion's write, the compressor's
//! output for one input chunk, the codec's state and what hyper has queued:
//! a bounded amount, whatever the file size. Compression runs on Tokio's
//! blocking pool (the engine offloads `Compress`, a CPU-heavy stage), never
//! on the runtime's workers, so serving other connections is not delayed by
//! it.
//!
//! # Ranges (RFC 9110 14.1 and 8.4)
//!
//! A request with a `Range` header is answered from the identity
//! representation, exactly as without compression (`206` with byte ranges
//! of the file, no `Content-Encoding`): ranges are never taken of an
//! encoded representation, whose bytes differ from one compressor version
//! to the next. Only whole-representation `200` responses to `GET` and
//! `HEAD` are encoded. An encoded response carries `Vary: Accept-Encoding`
//! (so do identity responses of a server that compresses), no
//! `Content-Length` (the body is chunked), and an entity tag of its own
//! (the identity tag with `-zstd` or `-gzip` appended), since RFC 9110
//! 8.8.3 wants different representations to have different strong tags.

use std::io;

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::mpsc;
use weir::{BoxError, Cause, IngestOptions, Sink};
use weir_transforms::{Codec, Compress};

use crate::source::ByteStream;

/// The content codings this server can produce.
pub(crate) const CODINGS: [Codec; 2] = [Codec::Zstd, Codec::Gzip];

/// The coding to use for a response to `headers`, by the client's
/// `Accept-Encoding` weights (RFC 9110 12.5.3): the acceptable coding with
/// the highest weight, zstd on a tie; `None` for identity (no header, no
/// acceptable coding, or a malformed header).
pub(crate) fn negotiate(headers: &HeaderMap) -> Option<Codec> {
    let mut weights = [None::<u16>; CODINGS.len()];
    let mut any = None::<u16>;
    for value in headers.get_all(http::header::ACCEPT_ENCODING) {
        let value = value.to_str().ok()?;
        for member in value.split(',') {
            let mut parts = member.split(';');
            let coding = parts.next().unwrap_or("").trim();
            if coding.is_empty() {
                continue;
            }
            let mut weight = 1000;
            for parameter in parts {
                let (name, q) = parameter.trim().split_once('=')?;
                if name.trim().eq_ignore_ascii_case("q") {
                    weight = qvalue(q.trim())?;
                }
            }
            if coding == "*" {
                any = Some(weight);
            } else if let Some(i) = CODINGS.iter().position(|c| c.as_str().eq_ignore_ascii_case(coding)) {
                weights[i] = Some(weight);
            }
        }
    }
    let mut best: Option<(u16, Codec)> = None;
    for (i, codec) in CODINGS.into_iter().enumerate() {
        let weight = weights[i].or(any).unwrap_or(0);
        if weight > 0 && best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, codec));
        }
    }
    best.map(|(_, codec)| codec)
}

/// An RFC 9110 qvalue in thousandths (`0`, `0.5`, `1.000`); `None` when
/// malformed.
fn qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The body of `source` compressed with `codec`, as a stream for
/// [`DeliveryBody`](crate::DeliveryBody): an ingestion on a task of its own
/// compresses into a one-slot channel this stream reads. Dropping the
/// stream (the client hung up) fails the ingestion's next write, which
/// aborts it and closes the source.
pub(crate) fn compressed(source: ByteStream, codec: Codec, chunk_size: usize) -> ByteStream {
    let (sender, receiver) = mpsc::channel(1);
    let options = IngestOptions::builder()
        .chunk_size(chunk_size)
        .transform(Compress::new(codec).piece_size(chunk_size))
        .build();
    tokio::spawn(async move {
        if let Err(error) = weir::ingest(source, ChannelSink { sender }, options).await {
            tracing::debug!(%error, codec = codec.as_str(), "compressed delivery ended early");
        }
    });
    Box::pin(futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    }))
}

/// The sink of a compressed delivery: each chunk goes into the channel to
/// the response body; an abort tells the body, which then fails the
/// response (hyper cuts the chunked body short rather than end it cleanly).
struct ChannelSink {
    sender: mpsc::Sender<io::Result<Bytes>>,
}

/// The body that would have taken the chunks is gone.
#[derive(Debug, thiserror::Error)]
#[error("the client is gone")]
struct ClientGone;

impl Sink for ChannelSink {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let sender = self.sender.clone();
        async move {
            sender
                .send(Ok(chunk))
                .await
                .map_err(|_| Box::new(ClientGone) as BoxError)
        }
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        let error = io::Error::other(format!("compressed delivery failed: {cause}"));
        // A receiver already gone needs no telling.
        let _ = self.sender.send(Err(error)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn accept(value: &str) -> Option<Codec> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        negotiate(&headers)
    }

    #[test]
    fn accept_encoding_weights_pick_the_coding() {
        assert_eq!(negotiate(&HeaderMap::new()), None);
        assert_eq!(accept("gzip"), Some(Codec::Gzip));
        assert_eq!(accept("zstd"), Some(Codec::Zstd));
        assert_eq!(accept("gzip, zstd"), Some(Codec::Zstd), "a tie goes to zstd");
        assert_eq!(accept("gzip;q=1, zstd;q=0.5"), Some(Codec::Gzip));
        assert_eq!(accept("zstd;q=0, gzip;q=0.001"), Some(Codec::Gzip));
        assert_eq!(accept("zstd;q=0, gzip;q=0"), None);
        assert_eq!(accept("*"), Some(Codec::Zstd));
        assert_eq!(accept("*;q=0.5, zstd;q=0"), Some(Codec::Gzip));
        assert_eq!(accept("br, deflate"), None);
        assert_eq!(accept("identity"), None);
        assert_eq!(accept("GZIP"), Some(Codec::Gzip));
        for malformed in ["gzip;q=2", "gzip;q=0.1234", "gzip;q=x", "gzip;q", "zstd;q=1.5"] {
            assert_eq!(accept(malformed), None, "{malformed}");
        }
    }
}
