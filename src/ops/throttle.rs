//! A few log lines per kind of event and window, and a count of the rest: a port scanner, a
//! crash-looping client or a misconfigured load balancer cannot flood the log, while the
//! first lines of each kind still say what is wrong.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub struct LogThrottle {
    window: Duration,
    burst: u32,
    kinds: Mutex<HashMap<&'static str, Window>>,
}

struct Window {
    started: Instant,
    logged: u32,
    /// Events not logged since the last line of this kind.
    quiet: u64,
}

impl LogThrottle {
    /// Lets `burst` lines of each kind through per `window`.
    pub fn new(window: Duration, burst: u32) -> LogThrottle {
        LogThrottle {
            window,
            burst,
            kinds: Mutex::default(),
        }
    }

    /// Whether an event of `kind` at `now` may be logged. `Some(n)`: log it, adding that `n`
    /// more like it went unlogged since the last line; `None`: count it and stay quiet.
    pub fn admit(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let window = kinds.entry(kind).or_insert(Window {
            started: now,
            logged: 0,
            quiet: 0,
        });
        if now.saturating_duration_since(window.started) >= self.window {
            window.started = now;
            window.logged = 0;
        }
        if window.logged < self.burst {
            window.logged += 1;
            Some(std::mem::take(&mut window.quiet))
        } else {
            window.quiet += 1;
            None
        }
    }
}

/// The tail a throttled line gets when others of its kind went unlogged before it.
pub fn unlogged(quiet: u64) -> String {
    if quiet == 0 {
        String::new()
    } else {
        format!(" ({quiet} more like this were not logged)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_window_then_a_count_of_the_rest() {
        let throttle = LogThrottle::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        let admitted: Vec<_> = (0..10).map(|_| throttle.admit("tls", t0)).collect();
        assert_eq!(&admitted[..3], &[Some(0), Some(0), Some(0)]);
        assert!(admitted[3..].iter().all(Option::is_none));
        // Another kind has a window of its own.
        assert_eq!(throttle.admit("http", t0), Some(0));
        // The next window's first line reports the seven that went unlogged.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(throttle.admit("tls", later), Some(7));
        assert_eq!(throttle.admit("tls", later), Some(0));
        assert_eq!(unlogged(7), " (7 more like this were not logged)");
        assert_eq!(unlogged(0), "");
    }
}
