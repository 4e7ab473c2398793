//! The `Transform` trait, and the pipeline that pulls chunks from the source
//! through the transform stages (inline, or off the runtime's workers for
//! CPU-heavy stages).

use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::error::{BoxError, Cause, PanicSite, panic_message};
use crate::report::StageReport;

/// A stage between source and sink: maps each chunk to zero, one or more
/// chunks, and may fail.
///
/// Stages run in order, one chunk at a time, so a stage sees its input in
/// source order and its output keeps that order. A stage that declares
/// itself [`cpu_heavy`](Transform::cpu_heavy) runs on Tokio's blocking pool
/// instead of a runtime worker; the ingestion waits for it, so there is no
/// queue between stages and backpressure holds.
pub trait Transform: Send + 'static {
    /// A short name for errors and metrics.
    fn name(&self) -> &str;

    /// Transforms one chunk, pushing any output chunks to `out` in order.
    ///
    /// # Errors
    ///
    /// Any error fails the ingestion with [`Cause::Transform`].
    fn transform(&mut self, chunk: Bytes, out: &mut Vec<Bytes>) -> Result<(), BoxError>;

    /// Called once after the last chunk, to flush buffered output (a partial
    /// record, a compressor's tail). The default emits nothing.
    ///
    /// # Errors
    ///
    /// Any error fails the ingestion with [`Cause::Transform`].
    fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), BoxError> {
        let _ = out;
        Ok(())
    }

    /// `true` when the stage burns enough CPU per chunk that it should run
    /// off the runtime's worker threads. The default is `false`.
    fn cpu_heavy(&self) -> bool {
        false
    }

    /// A closing summary for the report (for example a digest), read after
    /// `finish`. The default is `None`.
    fn summary(&self) -> Option<String> {
        None
    }
}

/// Inline stage work after which the pipeline yields to the runtime.
const INLINE_YIELD_AFTER: Duration = Duration::from_millis(1);

/// What a stage is asked to do.
enum Job {
    Chunk(Bytes),
    Finish,
}

struct StageResult {
    transform: Box<dyn Transform>,
    /// `false` for `finish`, whose empty output drops nothing.
    was_chunk: bool,
    output: Result<Vec<Bytes>, Cause>,
    busy: Duration,
}

/// Runs one job on one stage, catching panics.
fn run_job(mut transform: Box<dyn Transform>, name: &str, job: Job) -> StageResult {
    let mut out = Vec::new();
    let was_chunk = matches!(job, Job::Chunk(_));
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| match job {
        Job::Chunk(chunk) => transform.transform(chunk, &mut out),
        Job::Finish => transform.finish(&mut out),
    }));
    let busy = started.elapsed();
    let output = match result {
        Ok(Ok(())) => Ok(out),
        Ok(Err(error)) => Err(Cause::Transform {
            stage: name.to_owned(),
            error,
        }),
        Err(payload) => Err(Cause::Panic {
            site: PanicSite::Transform(name.to_owned()),
            message: panic_message(payload.as_ref()),
        }),
    };
    StageResult {
        transform,
        was_chunk,
        output,
        busy,
    }
}

struct Stage {
    /// `None` while the transform is away on the blocking pool.
    transform: Option<Box<dyn Transform>>,
    heavy: bool,
    report: StageReport,
}

/// The source and the transform stages, as one cancel-safe stream of chunks
/// ready for the sink.
///
/// All state lives in the struct (never in a transient future), so dropping
/// a `next()` future loses nothing.
pub(crate) struct Pipeline<St> {
    source: Option<Pin<Box<St>>>,
    max_chunk: usize,
    stages: Vec<Stage>,
    /// Chunks waiting to enter the stage at the index (`stages.len()` means
    /// ready for the sink), processed front first.
    work: VecDeque<(usize, Bytes)>,
    /// Stages whose `finish` has run, after the source ended.
    finished: usize,
    offload: Option<(usize, JoinHandle<StageResult>)>,
    tracker: TaskTracker,
    /// CPU time spent in inline stages since the pipeline last yielded.
    inline_busy: Duration,
    pub(crate) bytes_read: u64,
    pub(crate) chunks_read: u64,
}

impl<St> Pipeline<St>
where
    St: Stream<Item = io::Result<Bytes>>,
{
    pub(crate) fn new(source: St, transforms: Vec<Box<dyn Transform>>, max_chunk: usize) -> Self {
        let stages = transforms
            .into_iter()
            .map(|t| Stage {
                heavy: t.cpu_heavy(),
                report: StageReport {
                    name: t.name().to_owned(),
                    offloaded: t.cpu_heavy(),
                    ..StageReport::default()
                },
                transform: Some(t),
            })
            .collect();
        Self {
            source: Some(Box::pin(source)),
            max_chunk,
            stages,
            work: VecDeque::new(),
            finished: 0,
            offload: None,
            tracker: TaskTracker::new(),
            inline_busy: Duration::ZERO,
            bytes_read: 0,
            chunks_read: 0,
        }
    }

    /// Closes the source now, and waits for any stage still running on the
    /// blocking pool, so that nothing this pipeline started outlives it.
    pub(crate) async fn close(&mut self) -> Vec<StageReport> {
        self.source = None;
        self.work.clear();
        if let Some((index, handle)) = self.offload.take()
            && let Ok(result) = handle.await
        {
            self.stages[index].transform = Some(result.transform);
            self.stages[index].report.busy += result.busy;
        }
        self.tracker.close();
        self.tracker.wait().await;
        self.reports()
    }

    fn reports(&self) -> Vec<StageReport> {
        self.stages
            .iter()
            .map(|s| StageReport {
                summary: s.transform.as_ref().and_then(|t| t.summary()),
                ..s.report.clone()
            })
            .collect()
    }

    /// Starts `job` on stage `index`: inline, or on the blocking pool.
    /// Returns an error to yield, if the stage failed inline.
    fn start(&mut self, index: usize, job: Job) -> Result<(), Cause> {
        let stage = &mut self.stages[index];
        if let Job::Chunk(chunk) = &job {
            stage.report.chunks_in += 1;
            stage.report.bytes_in += chunk.len() as u64;
        }
        let Some(transform) = stage.transform.take() else {
            // A stage is only away while `offload` is set, and nothing is
            // started then; reaching here would be an engine bug.
            return Err(Cause::Panic {
                site: PanicSite::Transform(stage.report.name.clone()),
                message: "engine bug: stage started twice".to_owned(),
            });
        };
        if stage.heavy {
            let name = stage.report.name.clone();
            let handle = self.tracker.spawn_blocking(move || run_job(transform, &name, job));
            self.offload = Some((index, handle));
            Ok(())
        } else {
            let name = stage.report.name.clone();
            let result = run_job(transform, &name, job);
            self.inline_busy += result.busy;
            self.complete(index, result)
        }
    }

    /// Takes a stage's result back: puts the transform back, counts, queues
    /// the output for the next stage.
    fn complete(&mut self, index: usize, result: StageResult) -> Result<(), Cause> {
        let stage = &mut self.stages[index];
        stage.transform = Some(result.transform);
        stage.report.busy += result.busy;
        let out = result.output?;
        if result.was_chunk && out.iter().all(Bytes::is_empty) {
            stage.report.chunks_dropped += 1;
        }
        for chunk in out.into_iter().rev() {
            if chunk.is_empty() {
                continue;
            }
            stage.report.chunks_out += 1;
            stage.report.bytes_out += chunk.len() as u64;
            self.work.push_front((index + 1, chunk));
        }
        Ok(())
    }
}

impl<St> Stream for Pipeline<St>
where
    St: Stream<Item = io::Result<Bytes>>,
{
    type Item = Result<Bytes, Cause>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // Without stages, and with nothing queued (a chunk over the limit is
        // split into the queue), a chunk within the limit goes straight from
        // the source to the caller: the per-chunk path of most ingestions.
        if this.stages.is_empty()
            && this.work.is_empty()
            && let Some(source) = &mut this.source
        {
            match catch_unwind(AssertUnwindSafe(|| source.as_mut().poll_next(cx))) {
                Ok(Poll::Ready(Some(Ok(chunk)))) if !chunk.is_empty() && chunk.len() <= this.max_chunk => {
                    this.bytes_read += chunk.len() as u64;
                    this.chunks_read += 1;
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Ok(Poll::Pending) => return Poll::Pending,
                polled => return this.take_polled(polled, cx),
            }
        }
        this.poll_work(cx)
    }
}

impl<St> Pipeline<St>
where
    St: Stream<Item = io::Result<Bytes>>,
{
    /// The rest of a source poll the fast path did not take: a panic, an
    /// error, the end, or a chunk to split or to drop.
    #[cold]
    fn take_polled(
        &mut self,
        polled: std::thread::Result<Poll<Option<io::Result<Bytes>>>>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Cause>>> {
        match polled {
            Err(payload) => {
                self.source = None;
                Poll::Ready(Some(Err(Cause::panic(PanicSite::Source, payload))))
            }
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Some(Ok(mut chunk)))) => {
                self.bytes_read += chunk.len() as u64;
                self.chunks_read += 1;
                while chunk.len() > self.max_chunk {
                    self.work.push_back((0, chunk.split_to(self.max_chunk)));
                }
                if !chunk.is_empty() {
                    self.work.push_back((0, chunk));
                }
                self.poll_work(cx)
            }
            Ok(Poll::Ready(Some(Err(error)))) => {
                self.source = None;
                Poll::Ready(Some(Err(Cause::Source {
                    bytes_read: self.bytes_read,
                    error,
                })))
            }
            Ok(Poll::Ready(None)) => {
                // Close the source as soon as it is exhausted.
                self.source = None;
                self.poll_work(cx)
            }
        }
    }

    /// The general path: offloaded stages, queued chunks, the source, then
    /// the stages' `finish`.
    fn poll_work(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Cause>>> {
        let this = self;
        loop {
            // A stage away on the blocking pool comes first.
            if let Some((index, handle)) = &mut this.offload {
                let index = *index;
                let joined = ready!(Pin::new(handle).poll(cx));
                this.offload = None;
                let result = match joined {
                    Ok(result) => result,
                    Err(join_error) => {
                        let name = this.stages[index].report.name.clone();
                        let message = match join_error.try_into_panic() {
                            Ok(payload) => panic_message(payload.as_ref()),
                            Err(_) => "blocking task was cancelled".to_owned(),
                        };
                        return Poll::Ready(Some(Err(Cause::Panic {
                            site: PanicSite::Transform(name),
                            message,
                        })));
                    }
                };
                if let Err(cause) = this.complete(index, result) {
                    return Poll::Ready(Some(Err(cause)));
                }
                continue;
            }

            // Then the oldest chunk in the pipeline.
            if let Some((index, chunk)) = this.work.pop_front() {
                if index == this.stages.len() {
                    // Stages may emit chunks larger than the sink's limit.
                    let mut chunk = chunk;
                    if chunk.len() > this.max_chunk {
                        let head = chunk.split_to(this.max_chunk);
                        this.work.push_front((index, chunk));
                        return Poll::Ready(Some(Ok(head)));
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                if let Err(cause) = this.start(index, Job::Chunk(chunk)) {
                    return Poll::Ready(Some(Err(cause)));
                }
                // Inline stages run on the runtime's thread: after a
                // millisecond of their work, let other tasks run before the
                // next chunk (Tokio's coop budget alone would allow ~128).
                if this.inline_busy >= INLINE_YIELD_AFTER {
                    this.inline_busy = Duration::ZERO;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }

            // Then a new chunk from the source.
            if let Some(source) = &mut this.source {
                let polled = catch_unwind(AssertUnwindSafe(|| source.as_mut().poll_next(cx)));
                match polled {
                    Err(payload) => {
                        this.source = None;
                        return Poll::Ready(Some(Err(Cause::panic(PanicSite::Source, payload))));
                    }
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Some(Ok(mut chunk)))) => {
                        this.bytes_read += chunk.len() as u64;
                        this.chunks_read += 1;
                        // Without stages, a chunk within the limit goes
                        // straight out (the queue is empty here).
                        if this.stages.is_empty() && !chunk.is_empty() && chunk.len() <= this.max_chunk {
                            return Poll::Ready(Some(Ok(chunk)));
                        }
                        while chunk.len() > this.max_chunk {
                            this.work.push_back((0, chunk.split_to(this.max_chunk)));
                        }
                        if !chunk.is_empty() {
                            this.work.push_back((0, chunk));
                        }
                    }
                    Ok(Poll::Ready(Some(Err(error)))) => {
                        this.source = None;
                        return Poll::Ready(Some(Err(Cause::Source {
                            bytes_read: this.bytes_read,
                            error,
                        })));
                    }
                    Ok(Poll::Ready(None)) => {
                        // Close the source as soon as it is exhausted.
                        this.source = None;
                    }
                }
                continue;
            }

            // The source is done: flush the stages, in order.
            if this.finished < this.stages.len() {
                let index = this.finished;
                this.finished += 1;
                if let Err(cause) = this.start(index, Job::Finish) {
                    return Poll::Ready(Some(Err(cause)));
                }
                continue;
            }
            return Poll::Ready(None);
        }
    }
}
