//! Zero-copy pass-through for plain TCP: the unread rest of a large frame moves from one
//! socket to the other through a kernel pipe with Linux `splice(2)`, so the gateway never
//! copies it into user space and back. Profiles of the copying path spent about 40% of the
//! gateway's CPU in those two copies.
//!
//! Pipes are pooled, not kept per session: a pipe is needed only while a large frame is in
//! transit, and thousands of idle sessions each holding two descriptors and a pipe buffer
//! would cost descriptors and count against the per-user pipe memory limit. A pipe goes back
//! to the pool only when a transfer emptied it; after a failure it is closed.
//!
//! On other systems, or when no pipe can be had, [`Pipes::take`] answers `None` and the
//! session copies as usual.

use std::io;

/// Why a transfer stopped before the frame's last byte went out.
#[derive(Debug)]
pub enum Stop {
    /// The sender sent nothing for the idle timeout.
    SenderIdle,
    /// The sender closed its side.
    SenderClosed,
    Sender(io::Error),
    /// The receiver read nothing for the idle timeout.
    ReceiverStalled,
    Receiver(io::Error),
}

/// Frames whose unread rest is shorter than this are copied: for a few kilobytes, two
/// `splice` calls cost more than a read and a write.
pub const MIN_BYTES: usize = 32 * 1024;

/// The size asked of each pipe: a few transfers' worth of a typical produce batch in flight
/// per call.
pub const PIPE_BYTES: usize = 1024 * 1024;

/// The pool of idle pipes; `None` inside when splicing is off.
pub struct Pipes {
    inner: Option<imp::Pool>,
}

impl Pipes {
    pub fn new(enabled: bool, pipe_bytes: usize) -> Pipes {
        Pipes {
            inner: enabled.then(|| imp::Pool::new(pipe_bytes)),
        }
    }

    /// A pipe for one transfer, or `None` when splicing is off or no pipe can be had.
    pub fn take(&self) -> Option<Pipe> {
        self.inner.as_ref()?.take()
    }

    /// Returns an empty pipe to the pool.
    pub fn put(&self, pipe: Pipe) {
        if let Some(pool) = &self.inner {
            pool.put(pipe);
        }
    }
}

pub use imp::Pipe;

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::{Mutex, PoisonError};
    use std::time::Duration;

    use rustix::pipe::{self, PipeFlags, SpliceFlags};
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    use super::Stop;
    use crate::proxy::deadline::Deadline;

    /// Idle pipes kept for reuse; more are closed when returned.
    const KEEP: usize = 64;

    pub struct Pool {
        idle: Mutex<Vec<Pipe>>,
        pipe_bytes: usize,
    }

    impl Pool {
        pub fn new(pipe_bytes: usize) -> Pool {
            Pool {
                idle: Mutex::new(Vec::new()),
                pipe_bytes,
            }
        }

        pub fn take(&self) -> Option<Pipe> {
            let reused = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            reused.or_else(|| match Pipe::open(self.pipe_bytes) {
                Ok(pipe) => Some(pipe),
                Err(e) => {
                    tracing::debug!("no pipe for splice, copying instead: {e}");
                    None
                }
            })
        }

        pub fn put(&self, pipe: Pipe) {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < KEEP {
                idle.push(pipe);
            }
        }
    }

    pub struct Pipe {
        rd: OwnedFd,
        wr: OwnedFd,
        capacity: usize,
    }

    impl Pipe {
        fn open(pipe_bytes: usize) -> io::Result<Pipe> {
            let (rd, wr) = pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
            // Bigger pipes mean fewer calls per frame. The kernel may refuse the size (the
            // per-user pipe memory limit); the pipe then keeps the size it has.
            let capacity = pipe::fcntl_setpipe_size(&wr, pipe_bytes)
                .or_else(|_| pipe::fcntl_getpipe_size(&wr))?;
            Ok(Pipe { rd, wr, capacity })
        }

        /// Moves exactly `len` bytes from `from` to `to`, failing on either side's silence
        /// for `idle`. The pipe is empty again when this returns `Ok`.
        pub async fn transfer(
            &mut self,
            from: &TcpStream,
            to: &TcpStream,
            len: usize,
            idle: Duration,
            deadline: &mut Deadline,
        ) -> Result<(), Stop> {
            let mut left = len;
            let mut held = 0;
            while left > 0 || held > 0 {
                let mut moved = false;
                if left > 0 && held < self.capacity {
                    let want = left.min(self.capacity - held);
                    let fill = || splice(from, &self.wr, want, SpliceFlags::empty());
                    // With the pipe empty, "would block" can only mean the socket is drained,
                    // so tokio may forget its readiness. With bytes held, it may mean the pipe
                    // is full instead, which says nothing about the socket: call directly.
                    let filled = if held == 0 {
                        from.try_io(Interest::READABLE, fill)
                    } else {
                        fill()
                    };
                    match filled {
                        Ok(0) => return Err(Stop::SenderClosed),
                        Ok(n) => {
                            left -= n;
                            held += n;
                            moved = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(Stop::Sender(e)),
                    }
                }
                if held > 0 {
                    // More of the frame to come: let TCP fill whole segments.
                    let more = if left > 0 {
                        SpliceFlags::MORE
                    } else {
                        SpliceFlags::empty()
                    };
                    match to.try_io(Interest::WRITABLE, || splice(&self.rd, to, held, more)) {
                        Ok(n) => {
                            held -= n;
                            moved |= n > 0;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(Stop::Receiver(e)),
                    }
                }
                if moved {
                    continue;
                }
                // Stuck: bytes held must go out before anything else; else wait for input.
                if held > 0 {
                    deadline
                        .within(idle, to.writable())
                        .await
                        .map_err(|_| Stop::ReceiverStalled)?
                        .map_err(Stop::Receiver)?;
                } else {
                    deadline
                        .within(idle, from.readable())
                        .await
                        .map_err(|_| Stop::SenderIdle)?
                        .map_err(Stop::Sender)?;
                }
            }
            Ok(())
        }
    }

    fn splice(from: impl AsFd, to: impl AsFd, len: usize, flags: SpliceFlags) -> io::Result<usize> {
        let flags = flags | SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
        Ok(pipe::splice(from, None, to, None, len, flags)?)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::Stop;

    pub struct Pool;

    impl Pool {
        pub fn new(_pipe_bytes: usize) -> Pool {
            Pool
        }

        pub fn take(&self) -> Option<Pipe> {
            None
        }

        pub fn put(&self, _pipe: Pipe) {}
    }

    /// Never made: there is no `splice` here.
    pub enum Pipe {}

    impl Pipe {
        pub async fn transfer(
            &mut self,
            _from: &tokio::net::TcpStream,
            _to: &tokio::net::TcpStream,
            _len: usize,
            _idle: std::time::Duration,
            _deadline: &mut crate::proxy::deadline::Deadline,
        ) -> Result<(), Stop> {
            match *self {}
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::{Pipes, Stop, PIPE_BYTES};
    use crate::proxy::deadline::Deadline;

    /// A connected pair of sockets: (the end the test drives, the end the gateway holds).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (ours, theirs) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (ours.expect("connect"), theirs.expect("accept").0)
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[tokio::test]
    async fn moves_exactly_the_frame_and_leaves_what_follows() {
        let (mut sender, from) = pair().await;
        let (to, mut receiver) = pair().await;
        let frame = bytes(3 << 20);
        let next = b"next frame";
        let pipes = Pipes::new(true, PIPE_BYTES);
        let mut pipe = pipes.take().expect("a pipe");
        let write = async {
            sender.write_all(&frame).await.expect("send");
            sender.write_all(next).await.expect("send");
        };
        let read = async {
            let mut got = vec![0; frame.len()];
            receiver.read_exact(&mut got).await.expect("receive");
            got
        };
        let idle = Duration::from_secs(5);
        let mut deadline = Deadline::new();
        let (_, moved, got) = tokio::join!(
            write,
            pipe.transfer(&from, &to, frame.len(), idle, &mut deadline),
            read
        );
        assert!(moved.is_ok(), "{moved:?}");
        assert!(got == frame, "bytes changed on the way");
        let mut rest = [0; 10];
        let mut from = from;
        from.read_exact(&mut rest).await.expect("the next frame");
        assert_eq!(&rest, next);
        pipes.put(pipe);
        assert!(pipes.take().is_some());
    }

    #[tokio::test]
    async fn a_silent_or_vanishing_sender_and_a_stalled_receiver_are_told_apart() {
        let idle = Duration::from_millis(300);
        let pipes = Pipes::new(true, PIPE_BYTES);

        let (mut sender, from) = pair().await;
        let (to, _receiver) = pair().await;
        sender.write_all(&bytes(1000)).await.expect("send");
        let mut pipe = pipes.take().expect("a pipe");
        let stop = pipe
            .transfer(&from, &to, 100_000, idle, &mut Deadline::new())
            .await;
        assert!(matches!(stop, Err(Stop::SenderIdle)), "{stop:?}");

        let (mut sender, from) = pair().await;
        let (to, _receiver) = pair().await;
        sender.write_all(&bytes(1000)).await.expect("send");
        drop(sender);
        let mut pipe = pipes.take().expect("a pipe");
        let stop = pipe
            .transfer(&from, &to, 100_000, idle, &mut Deadline::new())
            .await;
        assert!(matches!(stop, Err(Stop::SenderClosed)), "{stop:?}");

        // A receiver that reads nothing: the socket buffers fill, then the transfer stalls.
        let (mut sender, from) = pair().await;
        let (to, _receiver) = pair().await;
        let frame = bytes(64 << 20);
        let mut pipe = pipes.take().expect("a pipe");
        let mut deadline = Deadline::new();
        let stop = tokio::select! {
            stop = pipe.transfer(&from, &to, frame.len(), idle, &mut deadline) => stop,
            _ = sender.write_all(&frame) => panic!("64 MiB went through with nobody reading"),
        };
        assert!(matches!(stop, Err(Stop::ReceiverStalled)), "{stop:?}");
    }

    #[test]
    fn off_means_no_pipe() {
        assert!(Pipes::new(false, PIPE_BYTES).take().is_none());
    }
}
