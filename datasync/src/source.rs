//! The API as a weir source: reads the NDJSON stream for one segment and
//! yields it in pieces that end right after a checkpoint line, so that
//! everything yielded is complete and the last checkpoint yielded is where
//! the next segment resumes. A response that breaks or ends early is
//! re-requested from the last checkpoint, after a backoff.

use std::io;
use std::sync::{Arc, Mutex};

use backon::ExponentialBackoff;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::client::{ApiClient, Endpoint, FetchError, Resume};
use crate::protocol::{self, Checkpoint};

/// What a segment has read so far, shared by the source (which writes it)
/// and the sink (which commits it).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SegmentProgress {
    /// The last checkpoint yielded: the segment's resume point once committed.
    pub checkpoint: Option<Checkpoint>,
    /// Event lines yielded (repeats included).
    pub lines: u64,
    /// Requests this segment opened.
    pub requests: u64,
}

/// Shared handle on a segment's progress.
pub type SharedProgress = Arc<Mutex<SegmentProgress>>;

/// Reads one segment of the log: from `resume` until the first checkpoint
/// at or after `target_lines` event lines, or the end of the log.
#[derive(Debug)]
pub struct ApiSource<'a> {
    client: &'a ApiClient,
    resume: Resume,
    target_lines: u64,
    /// The range's end (Unix ms of the first event not wanted); `None`:
    /// the log's end.
    until_ms: Option<u64>,
    progress: SharedProgress,
    body: Option<Incoming>,
    /// Bytes received after the last yielded checkpoint.
    buf: BytesMut,
    /// How far `buf` has been scanned for lines.
    scanned: usize,
    /// End of the last checkpoint line in `buf` (0: none yet).
    boundary: usize,
    /// Event lines in `buf` before `boundary`, and after it.
    confirmed_lines: u64,
    pending_lines: u64,
    /// The last checkpoint of the current response has arrived.
    response_done: bool,
    /// The segment is complete; yield what is left, then end.
    segment_done: bool,
    /// Backoff for stream failures in a row; reset by progress.
    backoff: Option<ExponentialBackoff>,
}

impl<'a> ApiSource<'a> {
    /// A segment reader starting at `resume`.
    pub fn new(client: &'a ApiClient, resume: Resume, target_lines: u64, progress: SharedProgress) -> Self {
        Self {
            client,
            resume,
            target_lines: target_lines.max(1),
            until_ms: None,
            progress,
            body: None,
            buf: BytesMut::new(),
            scanned: 0,
            boundary: 0,
            confirmed_lines: 0,
            pending_lines: 0,
            response_done: false,
            segment_done: false,
            backoff: None,
        }
    }

    /// Ends the segment (and the job) at the first checkpoint after the
    /// events before `until_ms` (see [`Checkpoint::ends`](crate::protocol::Checkpoint::ends)).
    #[must_use]
    pub fn until(mut self, until_ms: Option<u64>) -> Self {
        self.until_ms = until_ms;
        self
    }

    /// The source as a stream of byte chunks, for [`weir::ingest`].
    pub fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'a {
        futures_util::stream::unfold(self, |mut source| async move {
            let item = source.next_chunk().await?;
            if item.is_err() {
                source.segment_done = true;
                source.boundary = 0;
                source.buf.clear();
            }
            Some((item, source))
        })
    }

    fn lines_so_far(&self) -> u64 {
        self.progress.lock().map_or(0, |p| p.lines) + self.confirmed_lines
    }

    /// Scans the new complete lines of `buf`; returns an error for a
    /// checkpoint line that does not parse.
    fn scan(&mut self) -> Result<(), FetchError> {
        while let Some(offset) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
            let start = self.scanned;
            let end = start + offset;
            self.scanned = end + 1;
            let line = &self.buf[start..end];
            if line.starts_with(protocol::CHECKPOINT_PREFIX) {
                let checkpoint: Checkpoint = serde_json::from_slice(line)
                    .map_err(|e| FetchError::Protocol(format!("bad checkpoint line: {e}")))?;
                self.boundary = self.scanned;
                self.confirmed_lines += self.pending_lines;
                self.pending_lines = 0;
                self.resume = Resume {
                    cursor: Some(checkpoint.next_cursor.clone()),
                    watermark: checkpoint.watermark.clone(),
                };
                self.response_done = checkpoint.last;
                let lines = self.lines_so_far();
                if checkpoint.ends(self.until_ms) || lines >= self.target_lines {
                    self.segment_done = true;
                }
                if let Ok(mut progress) = self.progress.lock() {
                    progress.checkpoint = Some(checkpoint);
                }
                if self.segment_done {
                    break;
                }
            } else if !line.is_empty() {
                self.pending_lines += 1;
            }
        }
        Ok(())
    }

    /// Yields everything up to the last checkpoint seen, if any.
    fn take_confirmed(&mut self) -> Option<Bytes> {
        if self.boundary == 0 {
            return None;
        }
        let chunk = self.buf.split_to(self.boundary).freeze();
        self.scanned -= self.boundary;
        self.boundary = 0;
        if let Ok(mut progress) = self.progress.lock() {
            progress.lines += self.confirmed_lines;
        }
        self.confirmed_lines = 0;
        // Progress: failures in a row start counting again.
        self.backoff = None;
        Some(chunk)
    }

    /// Drops the unconfirmed tail and waits before re-requesting.
    async fn recover(&mut self, error: FetchError) -> Result<(), FetchError> {
        self.body = None;
        self.buf.truncate(self.boundary);
        self.scanned = self.boundary;
        self.pending_lines = 0;
        self.response_done = false;
        let stats = self.client.stats();
        stats.record_truncated();
        let policy = *self.client.policy();
        let backoff = self.backoff.get_or_insert_with(|| policy.backoff_iter());
        match backoff.next() {
            Some(delay) => {
                stats.record_wait(delay);
                tracing::warn!(%error, delay_ms = delay.as_millis() as u64, "api stream broke, resuming from the last checkpoint");
                tokio::time::sleep(delay).await;
                Ok(())
            }
            None => Err(error),
        }
    }

    async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            if let Some(chunk) = self.take_confirmed() {
                return Some(Ok(chunk));
            }
            if self.segment_done {
                self.body = None;
                return None;
            }
            let body = match &mut self.body {
                Some(body) => body,
                None => {
                    let wanted = self.target_lines.saturating_sub(self.lines_so_far()).max(1);
                    match self.client.open(Endpoint::Stream, &self.resume, wanted).await {
                        Ok((response, resume)) => {
                            self.resume = resume;
                            self.response_done = false;
                            if let Ok(mut progress) = self.progress.lock() {
                                progress.requests += 1;
                            }
                            self.body.insert(response.into_body())
                        }
                        Err(error) => return Some(Err(io::Error::other(error))),
                    }
                }
            };
            let timeout = self.client.policy().read_timeout;
            let frame = match tokio::time::timeout(timeout, body.frame()).await {
                Ok(Some(Ok(frame))) => Ok(Some(frame)),
                Ok(Some(Err(error))) => Err(FetchError::Http(error)),
                Ok(None) => Ok(None),
                Err(_) => Err(FetchError::Timeout(timeout)),
            };
            let failure = match frame {
                Ok(Some(frame)) => match frame.into_data() {
                    Ok(data) => {
                        self.buf.extend_from_slice(&data);
                        self.scan().err()
                    }
                    Err(_) => None,
                },
                Err(error) => Some(error),
                Ok(None) if self.response_done => {
                    self.body = None;
                    None
                }
                Ok(None) => Some(FetchError::Protocol(
                    "the response ended before its final checkpoint".to_owned(),
                )),
            };
            if let Some(error) = failure
                && let Err(error) = self.recover(error).await
            {
                return Some(Err(io::Error::other(error)));
            }
        }
    }
}
