//! Readiness reads for `FileSource` over a pipe, FIFO, socket or terminal:
//! non-blocking `read(2)` when Tokio's I/O driver reports the descriptor
//! readable, on the stream's own task, with no thread.
//!
//! A blocking read on a thread cannot be interrupted: a source over a
//! silent pipe could only be dropped by leaving the thread behind (against
//! "nothing the ingestion created outlives it") or by joining it (which
//! blocks the dropping worker until the writer writes or closes; a deadlock
//! on a current-thread runtime). Readiness has nothing to interrupt: the
//! drop deregisters the descriptor and closes it, at once.

#[cfg(target_os = "linux")]
pub(super) use linux::Ready;

#[cfg(not(target_os = "linux"))]
pub(super) use other::Ready;

#[cfg(target_os = "linux")]
mod linux {
    use std::fs::File;
    use std::io;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use rustix::fs::OFlags;
    use tokio::io::{AsyncRead, ReadBuf};
    use tokio::net::unix::pipe;

    use crate::source::pool::BufferPool;

    /// A non-regular file switched to non-blocking reads.
    pub(in crate::source) struct Ready {
        file: Arc<File>,
        /// A duplicate of the descriptor, registered with the runtime's I/O
        /// driver at the first poll (the source may be built outside a
        /// runtime). Tokio's pipe receiver reads any descriptor that
        /// readiness applies to (pipes, FIFOs, sockets, terminals) and is the
        /// safe way to register one.
        registration: Option<pipe::Receiver>,
        /// The file description's flags before `O_NONBLOCK` was set: the
        /// description may be shared (a duplicated descriptor, a terminal),
        /// so they are restored on drop.
        flags: OFlags,
    }

    impl std::fmt::Debug for Ready {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Ready")
                .field("registered", &self.registration.is_some())
                .finish_non_exhaustive()
        }
    }

    /// What the first poll found.
    pub(in crate::source) enum Registered {
        Yes,
        /// Readiness is unavailable (no runtime or no I/O driver, or a
        /// descriptor epoll refuses, such as `/dev/zero`); the file is
        /// blocking again and the reader thread must take it.
        No,
    }

    impl Ready {
        /// Switches `file` to non-blocking reads; `None` when its flags
        /// cannot be changed (the thread then reads it).
        pub(in crate::source) fn new(file: &Arc<File>) -> Option<Self> {
            let flags = rustix::fs::fcntl_getfl(&**file).ok()?;
            rustix::fs::fcntl_setfl(&**file, flags | OFlags::NONBLOCK).ok()?;
            Some(Self {
                file: Arc::clone(file),
                registration: None,
                flags,
            })
        }

        /// Registers with the current runtime's I/O driver, once.
        pub(in crate::source) fn register(&mut self) -> Registered {
            if self.registration.is_some() {
                return Registered::Yes;
            }
            let duplicate = match self.file.try_clone() {
                Ok(duplicate) => duplicate,
                Err(error) => {
                    tracing::debug!(%error, "could not duplicate the descriptor, reading it on a thread");
                    self.restore();
                    return Registered::No;
                }
            };
            // Tokio panics when there is no runtime or no I/O driver; the
            // panic is the only way to tell, and the thread is the fallback.
            match catch_unwind(AssertUnwindSafe(|| pipe::Receiver::from_file_unchecked(duplicate))) {
                Ok(Ok(registration)) => {
                    self.registration = Some(registration);
                    Registered::Yes
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, "readiness unavailable for this file, reading it on a thread");
                    self.restore();
                    Registered::No
                }
                Err(_) => {
                    tracing::debug!("no Tokio I/O driver, reading the file on a thread");
                    self.restore();
                    Registered::No
                }
            }
        }

        /// One chunk, read once the descriptor is readable. `Ok(None)` is
        /// the end of the input.
        pub(in crate::source) fn poll_read(
            &mut self,
            cx: &mut Context<'_>,
            pool: &Arc<BufferPool>,
            len: usize,
        ) -> Poll<io::Result<Option<Bytes>>> {
            let Some(registration) = &mut self.registration else {
                return Poll::Ready(Err(io::Error::other("file source polled before registering")));
            };
            let mut buffer = pool.take();
            let mut window = ReadBuf::new(buffer.window(len));
            let polled = Pin::new(registration).poll_read(cx, &mut window);
            let n = window.filled().len();
            match polled {
                Poll::Pending => {
                    pool.give(buffer);
                    Poll::Pending
                }
                Poll::Ready(Ok(())) if n == 0 => {
                    pool.give(buffer);
                    Poll::Ready(Ok(None))
                }
                Poll::Ready(Ok(())) => Poll::Ready(Ok(Some(pool.wrap(buffer, n)))),
                Poll::Ready(Err(error)) => {
                    pool.give(buffer);
                    Poll::Ready(Err(error))
                }
            }
        }

        fn restore(&self) {
            if let Err(error) = rustix::fs::fcntl_setfl(&*self.file, self.flags) {
                tracing::debug!(%error, "could not restore the file's flags");
            }
        }
    }

    impl Drop for Ready {
        fn drop(&mut self) {
            // Deregisters and closes the duplicate; nothing to wait for.
            self.registration = None;
            self.restore();
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    use std::fs::File;
    use std::io;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::Bytes;

    use crate::source::pool::BufferPool;

    /// Off Linux every file is read by the thread.
    #[derive(Debug)]
    pub(in crate::source) enum Ready {}

    pub(in crate::source) enum Registered {
        Yes,
        No,
    }

    impl Ready {
        pub(in crate::source) fn new(_: &Arc<File>) -> Option<Self> {
            None
        }

        pub(in crate::source) fn register(&mut self) -> Registered {
            match *self {}
        }

        pub(in crate::source) fn poll_read(
            &mut self,
            _: &mut Context<'_>,
            _: &Arc<BufferPool>,
            _: usize,
        ) -> Poll<io::Result<Option<Bytes>>> {
            match *self {}
        }
    }
}

#[cfg(target_os = "linux")]
pub(super) use linux::Registered;
#[cfg(not(target_os = "linux"))]
pub(super) use other::Registered;
