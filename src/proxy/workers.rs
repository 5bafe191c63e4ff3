//! The threads sessions run on: one single-threaded runtime per thread, each with its own
//! I/O driver and timers. A connection is handed to one of them when it is accepted and stays
//! there, so its socket events wake the thread that runs it and no thread ever has to wake
//! another on the data path.
//!
//! Why not tokio's work-stealing scheduler: with it, nearly every socket event made the
//! thread that saw it wake an idle sibling (a futex call each way) in case there was work to
//! steal. `strace -c` counted two futex calls per request and response, and the gateway spent
//! about 45 µs of CPU per small round trip against haproxy's 33 µs. Sessions never need more
//! than one core each, so there is nothing for stealing to gain.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: CancellationToken,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    /// Starts `count` worker threads (at least one).
    pub fn start(count: usize) -> io::Result<Workers> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("kafka-edge-{i}"))
                .spawn(move || runtime.block_on(stop.cancelled()))?;
            threads.push(thread);
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
            stop,
            threads: Mutex::new(threads),
        })
    }

    /// Runs `session` for an accepted connection on the next worker, in turn. The socket
    /// moves to that worker's I/O driver first, so only that thread hears of it again.
    pub fn spawn<S, F>(&self, socket: TcpStream, session: S) -> io::Result<()>
    where
        S: FnOnce(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let socket = socket.into_std()?;
        let worker = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[worker].spawn(async move {
            match TcpStream::from_std(socket) {
                Ok(socket) => session(socket).await,
                Err(e) => tracing::warn!("cannot take over an accepted connection: {e}"),
            }
        });
        Ok(())
    }

    /// Stops every worker, dropping the sessions still on them, and waits for the threads.
    /// Called once serving is over, from outside the workers.
    pub fn stop(&self) {
        self.stop.cancel();
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a worker thread panicked");
            }
        }
    }
}

impl Drop for Workers {
    /// Lets the threads end; never joins, because the last owner may be a worker itself.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
