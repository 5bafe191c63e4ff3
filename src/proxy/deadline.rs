//! Idle and stall timeouts that cost nothing per read.
//!
//! A fresh `tokio::time::timeout` around every read registers a timer each time the read has
//! to wait, and a timer earlier than any the runtime knows makes it wake its own driver (an
//! eventfd write): one extra system call per request and per response. A [`Deadline`] keeps
//! one timer per pump instead. Each wait moves the deadline forward without touching the
//! timer; when the timer fires early, it is set again for the deadline now due, so it is
//! touched about once per timeout period, however many reads happen in between.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

pub struct Deadline {
    timer: Pin<Box<Sleep>>,
}

/// The wait ran out: the peer did nothing for the whole limit.
#[derive(Debug)]
pub struct Expired;

impl Deadline {
    pub fn new() -> Deadline {
        Deadline {
            timer: Box::pin(tokio::time::sleep_until(far_future())),
        }
    }

    /// Runs `io`, failing when it takes longer than `limit` (`Duration::MAX`: no limit).
    pub async fn within<T>(
        &mut self,
        limit: Duration,
        io: impl Future<Output = T>,
    ) -> Result<T, Expired> {
        let Some(due) = Instant::now().checked_add(limit) else {
            return Ok(io.await);
        };
        // Only a timer that would fire late must move now; one that fires early is set again.
        if self.timer.deadline() > due {
            self.timer.as_mut().reset(due);
        }
        tokio::pin!(io);
        loop {
            tokio::select! {
                biased;
                done = &mut io => return Ok(done),
                _ = self.timer.as_mut() => {
                    if Instant::now() >= due {
                        self.timer.as_mut().reset(far_future());
                        return Err(Expired);
                    }
                    self.timer.as_mut().reset(due);
                }
            }
        }
    }
}

impl Default for Deadline {
    fn default() -> Deadline {
        Deadline::new()
    }
}

/// A deadline that never comes in practice (tokio caps sleeps at about two years).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Deadline;

    #[tokio::test(start_paused = true)]
    async fn activity_moves_the_deadline_and_silence_trips_it() {
        let mut deadline = Deadline::new();
        let limit = Duration::from_millis(100);
        // Many short waits, together far longer than the limit: none trips.
        for _ in 0..20 {
            let waited = deadline
                .within(limit, tokio::time::sleep(Duration::from_millis(60)))
                .await;
            assert!(waited.is_ok());
        }
        // One wait longer than the limit trips, at the limit.
        let start = tokio::time::Instant::now();
        let waited = deadline
            .within(limit, tokio::time::sleep(Duration::from_secs(5)))
            .await;
        assert!(waited.is_err());
        assert_eq!(start.elapsed(), limit);
        // No limit: waits as long as it takes.
        let waited = deadline
            .within(Duration::MAX, tokio::time::sleep(Duration::from_secs(5)))
            .await;
        assert!(waited.is_ok());
        // A shorter limit after a longer one still trips on time.
        let start = tokio::time::Instant::now();
        let _ = deadline
            .within(
                Duration::from_secs(60),
                tokio::time::sleep(Duration::from_millis(1)),
            )
            .await;
        let waited = deadline
            .within(limit, tokio::time::sleep(Duration::from_secs(5)))
            .await;
        assert!(waited.is_err());
        assert_eq!(start.elapsed(), limit + Duration::from_millis(1));
    }
}
