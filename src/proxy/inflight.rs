//! Requests awaiting their response, in order.
//!
//! The request pump pushes one entry per request that will be answered, before the request
//! reaches the broker; the response pump takes them in the same order, because Kafka answers
//! in request order on each connection. The queue is bounded: a client that pipelines more
//! than [`CAPACITY`] requests waits until responses drain it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::rewrite::Rewrite;

/// In-flight requests per connection before the client is slowed down. Clients keep about
/// five in flight; the rest is headroom for pipelining tools.
pub const CAPACITY: usize = 1024;

#[derive(Debug)]
pub enum Expect {
    /// A broker response with this correlation id.
    Response {
        correlation_id: i32,
        api_key: i16,
        api_version: i16,
        rewrite: Option<Rewrite>,
        /// When the request's head was read, for the latency histogram.
        sent: Instant,
    },
    /// An answer the gateway gives itself, sent to the client when its turn comes.
    Local(Bytes),
}

pub fn channel() -> (mpsc::Sender<Expect>, mpsc::Receiver<Expect>) {
    mpsc::channel(CAPACITY)
}

/// How many answers the client is still owed, shared by the two pumps of a session: the
/// request pump counts each expectation it queues, the response pump each answer it finishes.
/// A client that is owed nothing and sends nothing is idle; one waiting on a slow answer
/// (a long JoinGroup, a long-poll Fetch) is not.
#[derive(Debug, Default)]
pub struct Owed(AtomicUsize);

impl Owed {
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn settle(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn is_none(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

/// Correlation ids of recent Produce requests with `acks=0`. Kafka never answers those, but
/// some brokers do (librdkafka's mock and tansu both send a response), and a client talking
/// to them directly just ignores it. Such an answer is recognised here and passed on, instead
/// of reading as a stream out of sync. Responses come in request order, so an answer retires
/// every older id with it; the oldest are forgotten past [`UNANSWERED_KEPT`].
#[derive(Debug, Default)]
pub struct Unanswered(Mutex<VecDeque<i32>>);

/// How many unanswered `acks=0` ids are remembered.
pub const UNANSWERED_KEPT: usize = 256;

impl Unanswered {
    pub fn push(&self, correlation_id: i32) {
        let mut ids = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if ids.len() == UNANSWERED_KEPT {
            ids.pop_front();
        }
        ids.push_back(correlation_id);
    }

    /// Whether `correlation_id` is an `acks=0` request's; if so it and all before it retire.
    pub fn take(&self, correlation_id: i32) -> bool {
        let mut ids = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match ids.iter().position(|id| *id == correlation_id) {
            Some(at) => {
                ids.drain(..=at);
                true
            }
            None => false,
        }
    }
}
