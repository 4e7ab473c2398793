//! Small sinks and sources for the engine's own tests (the full chaos suite
//! lives in `scenarios/chaos`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use weir::{BoxError, Cause, ErrorKind, Sink, TryWrite};

/// One call the sink saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Write(Bytes),
    Finalize,
    Abort(ErrorKind),
}

/// How a scripted sink behaves.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub fail_write: Option<usize>,
    pub hang_write: Option<usize>,
    pub panic_write: Option<usize>,
    pub write_delay: Option<Duration>,
    pub fail_finalize: bool,
    pub hang_finalize: bool,
    pub panic_finalize: bool,
    pub fail_abort: bool,
    pub hang_abort: bool,
    /// `try_write` takes the even-numbered writes at once (failing or
    /// panicking as scripted for their number) and declines the others.
    pub eager_even: bool,
}

/// A sink that follows a script and records every call.
#[derive(Debug, Clone, Default)]
pub struct Scripted {
    pub script: Script,
    pub calls: Arc<Mutex<Vec<Call>>>,
    /// Writes `try_write` took at once.
    pub taken_at_once: Arc<Mutex<usize>>,
    writes: usize,
}

impl Scripted {
    pub fn new(script: Script) -> Self {
        Self {
            script,
            ..Self::default()
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn written(&self) -> Vec<u8> {
        self.calls()
            .iter()
            .filter_map(|c| match c {
                Call::Write(b) => Some(b.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

impl Sink for Scripted {
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), BoxError>> + Send + use<> {
        let n = self.writes;
        self.writes += 1;
        self.calls.lock().unwrap().push(Call::Write(chunk));
        if self.script.panic_write == Some(n) {
            panic!("scripted panic in write {n}");
        }
        let script = self.script.clone();
        async move {
            if let Some(delay) = script.write_delay {
                tokio::time::sleep(delay).await;
            }
            if script.hang_write == Some(n) {
                std::future::pending::<()>().await;
            }
            if script.fail_write == Some(n) {
                return Err("Database Connection Lost".into());
            }
            Ok(())
        }
    }

    fn try_write(&mut self, chunk: Bytes) -> TryWrite {
        let n = self.writes;
        if !self.script.eager_even || n % 2 == 1 {
            return TryWrite::Declined(chunk);
        }
        self.writes += 1;
        self.calls.lock().unwrap().push(Call::Write(chunk));
        *self.taken_at_once.lock().unwrap() += 1;
        if self.script.panic_write == Some(n) {
            panic!("scripted panic in try_write {n}");
        }
        if self.script.fail_write == Some(n) {
            return TryWrite::Done(Err("Database Connection Lost".into()));
        }
        TryWrite::Done(Ok(()))
    }

    async fn finalize(&mut self) -> Result<(), BoxError> {
        self.calls.lock().unwrap().push(Call::Finalize);
        if self.script.panic_finalize {
            panic!("scripted panic in finalize");
        }
        if self.script.hang_finalize {
            std::future::pending::<()>().await;
        }
        if self.script.fail_finalize {
            return Err("commit refused".into());
        }
        Ok(())
    }

    async fn abort(self, cause: &Cause) -> Result<(), BoxError> {
        self.calls.lock().unwrap().push(Call::Abort(cause.kind()));
        if self.script.hang_abort {
            std::future::pending::<()>().await;
        }
        if self.script.fail_abort {
            return Err("abort could not reach the database".into());
        }
        Ok(())
    }
}

/// `n` chunks of `size` bytes with recognisable contents.
pub fn chunks(n: usize, size: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(vec![u8::try_from(i % 251).unwrap(); size]))
        .collect()
}

pub fn source_of(chunks: Vec<Bytes>) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    stream::iter(chunks.into_iter().map(Ok))
}

/// A source that yields `chunks` and then fails.
pub fn failing_source(chunks: Vec<Bytes>) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    stream::iter(
        chunks
            .into_iter()
            .map(Ok)
            .chain(std::iter::once(Err(std::io::Error::other("disk on fire")))),
    )
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}
