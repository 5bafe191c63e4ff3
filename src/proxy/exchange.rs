//! Which response answers which request, as a pure state machine: bytes and instants in,
//! steps out. The session's pumps only move bytes and arm timers around it.
//!
//! The gateway owns every conversation. A client chooses its correlation ids and nothing
//! stops it from reusing one, and some brokers answer `acks=0` Produce, which Kafka never
//! does. Matching answers by the client's ids let a crafted pair of requests pass a Metadata
//! answer on unrewritten, and have a Produce answer read as Metadata, teaching the gateway a
//! broker the cluster never had. So every request forwarded carries an id the gateway chose
//! (a same-length edit of its header), and every answer is attributed by that id alone,
//! before the client's own id is put back. Ids are handed out in order, and a connection's
//! answers come in request order, so an answer is either the one the oldest waiting request
//! expects, or one to an `acks=0` request sent after the last answer and before that request
//! (such answers are dropped: no client waits for them, and the Java and Python clients fail
//! on an answer they did not ask for), or a broken stream, which closes the connection.
//! Nothing is remembered per `acks=0` request, so there is no limit on how many may be
//! outstanding.
//!
//! The state machine also decides idleness, because only it knows whether a silent peer owes
//! something: a client owed an answer is waiting, not idle; a broker is idle only with an
//! answer due.
//!
//! Under a policy ([`Authorizer`]), each request is held until it is whole and decided
//! before a byte of it goes on: forwarded (perhaps edited), refused with the answer a broker
//! would give (an answer of the gateway's own, in its turn), or the connection closed. The
//! answers of requests whose answers list what the principal may not see are held whole and
//! filtered, then rewritten: the address rewrite is the last thing to touch their bytes.
//! Without a policy none of this runs, and frames stream as before.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use crate::edge::auth::filter::{Filter, FilterError};
use crate::edge::auth::policy::{Operation, Policy, Resource};
use crate::edge::auth::resources::Target;
use crate::edge::auth::topic_ids::TopicIds;
use crate::edge::auth::verdict::{self, Denial, Refusal, Verdict};
use crate::proxy::frame::{self, FrameError, RequestHead};
use crate::rewrite::fetch::{self, FetchWalk, Next};
use crate::rewrite::{self, api_versions, AddressBook, Rewrite, RewriteError};

/// Whose side a failure or a silence is on, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Broker,
    Gateway,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Broker => "broker",
            Side::Gateway => "gateway",
        })
    }
}

/// The bounds one connection works within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest frame streamed through, either way.
    pub max_frame: usize,
    /// The most of an answer held before its last address: memory a connection may take
    /// for a moment.
    pub max_held: usize,
    /// Answers a client may be owed before the gateway stops reading its requests.
    pub max_in_flight: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("{side} sent a bad frame: {source}")]
    Frame { side: Side, source: FrameError },
    #[error("client sent api key {api_key} v{api_version}, which the gateway does not offer")]
    NotOffered { api_key: i16, api_version: i16 },
    #[error("client sent SaslHandshake v0, after which SASL tokens travel outside Kafka framing; the gateway relays SaslHandshake v1 with SaslAuthenticate (every Kafka client since 1.0): upgrade the client")]
    SaslHandshakeV0,
    #[error("broker answered correlation id {got}, which answers no request it was sent{}", owed(.due))]
    Unattributed { got: i32, due: Option<(i32, i16)> },
    #[error("broker answered api key {api_key} with more than {size} bytes before its last address, above the {max}-byte limit for what is held to be rewritten (gateway.max_rewrite_bytes)")]
    HeldTooLarge {
        api_key: i16,
        size: usize,
        max: usize,
    },
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    #[error("an answer held for rewriting was not rewritten before the next step")]
    NotRewritten,
    #[error("client sent api key {api_key} before logging in")]
    NotLoggedIn { api_key: i16 },
    #[error("client sent api key {api_key}, which the policy refuses ({reason}) and which has no answer to refuse it by: closing, as a broker does")]
    Denied { api_key: i16, reason: &'static str },
    #[error("client sent api key {api_key}: {refusal}")]
    Refused { api_key: i16, refusal: Refusal },
    #[error("cannot filter the answer to api key {api_key}: {source}")]
    Filter { api_key: i16, source: FilterError },
}

fn owed(due: &Option<(i32, i16)>) -> String {
    match due {
        Some((id, api_key)) => {
            format!(" (id {id}, api key {api_key}, was due): stream out of sync")
        }
        None => ": no request was waiting".to_owned(),
    }
}

impl ExchangeError {
    pub fn side(&self) -> Side {
        match self {
            ExchangeError::Frame { side, .. } => *side,
            ExchangeError::NotOffered { .. }
            | ExchangeError::SaslHandshakeV0
            | ExchangeError::NotLoggedIn { .. }
            | ExchangeError::Denied { .. }
            | ExchangeError::Refused { .. } => Side::Client,
            ExchangeError::Filter {
                source: FilterError::Frame(_),
                ..
            } => Side::Broker,
            ExchangeError::Filter { .. } => Side::Gateway,
            ExchangeError::Unattributed { .. } | ExchangeError::HeldTooLarge { .. } => Side::Broker,
            ExchangeError::Rewrite(RewriteError::Decode { .. }) => Side::Broker,
            ExchangeError::Rewrite(_) | ExchangeError::NotRewritten => Side::Gateway,
        }
    }
}

/// A peer stayed silent for the whole idle limit while it was its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idle {
    pub side: Side,
    /// Where the conversation stood, for the log line.
    pub when: &'static str,
}

/// What the pump does next with its input (the bytes read and not yet passed on).
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The first `n` bytes of the input go on as they now are (ids already edited in place).
    Forward(usize),
    /// The first `consumed` bytes of the input are replaced by `with`: a rewritten answer, a
    /// dropped frame (`with` empty), or an answer of the gateway's own (`consumed` zero).
    Replace { consumed: usize, with: Bytes },
    /// The first `len` bytes of the input are a whole answer that names brokers: take them
    /// out and pass them through [`Exchange::rewrite_held`], which says what goes out instead.
    Rewrite { len: usize },
    /// Nothing more until the input holds at least `need` bytes.
    Wait { need: usize },
    /// (requests) The client is owed as many answers as it may be: read no more of its
    /// requests until answers go out.
    Full,
    /// (requests) The first `len` bytes of the input are a whole request the edge answers
    /// itself (ApiVersions, SaslHandshake, SaslAuthenticate of a client that logs in at the
    /// gateway): take them out, and give the answer with [`Exchange::answer_intercepted`].
    Intercept { len: usize },
    /// (responses) The next answer due is one the edge has not given yet: read no more of
    /// the broker's until it has.
    Pause,
}

/// What the exchange tells the metrics as frames go by.
pub trait Observer {
    fn request(&self, api_key: i16, bytes: usize);
    fn response(&self, api_key: i16, bytes: usize, waited: Duration);
    fn rewrite(&self, api_key: i16, ok: bool);
    /// The client's `client.id`, at most once per connection, from the first request whose
    /// header holds it whole (cut to [`MAX_CLIENT_ID`] bytes): for `/connections`.
    fn client_id(&self, _id: &str) {}
    /// The policy refused a request: answered with `denial.error` when `answered`, else the
    /// connection closes. For the audit log and the denial metric.
    fn denied(&self, _api_key: i16, _denial: &Denial<'_>, _answered: bool) {}
}

/// What a connection under a policy adds to the exchange, behind one pointer: the exchange
/// of a connection without one stays the size it was.
struct Policed {
    authorizer: Authorizer,
    /// What the answers to some forwarded requests must drop for the principal, by the
    /// gateway's id of the request, oldest first.
    filters: VecDeque<(i32, Filter)>,
}

/// What decides the requests of a connection under a policy.
pub struct Authorizer {
    pub policy: Arc<Policy>,
    /// Who the client is; `None` when it has not logged in, and may then send only what a
    /// broker accepts before a login (ApiVersions, SaslHandshake, SaslAuthenticate).
    pub principal: Option<String>,
    /// The gateway's topic names by id: Fetch and Produce name topics by id.
    pub topics: Arc<TopicIds>,
}

/// The longest client id passed to [`Observer::client_id`]; longer ones are cut. Kafka
/// clients send short names, and what an operator reads in `/connections` need be no longer.
pub const MAX_CLIENT_ID: usize = 256;

/// A request forwarded to the broker that will be answered, or an answer of the gateway's own
/// waiting for its turn.
#[derive(Debug)]
enum Pending {
    Broker {
        id: i32,
        client_id: i32,
        api_key: i16,
        api_version: i16,
        rewrite: Option<Rewrite>,
        sent: Instant,
    },
    Local(Bytes),
    /// A request the edge answers itself (a login's), its answer not yet given.
    Intercepted(Option<Bytes>),
}

/// Where the request direction stands within the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passing {
    /// At a frame boundary.
    Between,
    /// This many bytes of a forwarded request still to come.
    Forward(usize),
    /// This many bytes of a request the gateway answers itself still to swallow.
    Drop(usize),
}

/// Where the response direction stands within the broker's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Between,
    /// This many bytes of an answer streamed to the client still to come.
    Forward(usize),
    /// This many bytes of an answer nobody waits for still to swallow.
    Drop(usize),
    /// An answer of `len` bytes that names brokers: its beginning is held until it reaches
    /// past the last address (`tried`: how many bytes were not yet enough).
    Hold {
        kind: Rewrite,
        api_key: i16,
        version: i16,
        len: usize,
        tried: usize,
    },
    /// A Fetch answer that may name brokers at its very end: streamed, its records passing
    /// unseen, only its own tagged fields held (see [`fetch`]).
    Stream(FetchWalk),
    /// The Fetch answer's tagged fields were handed out by [`Step::Rewrite`].
    RewritingTail(FetchWalk),
    /// An answer of `len` bytes to filter for the principal (by the first of
    /// [`Policed::filters`]): held until it is whole.
    Whole {
        rewrite: Option<Rewrite>,
        len: usize,
    },
    /// The whole answer was handed out by [`Step::Rewrite`], to be filtered, then rewritten.
    Filtering {
        rewrite: Option<Rewrite>,
    },
    /// Its first `end` bytes were handed out by [`Step::Rewrite`]; nothing more until they
    /// come back through [`Exchange::rewrite_held`]. The rest then streams.
    Rewriting {
        kind: Rewrite,
        api_key: i16,
        version: i16,
        len: usize,
        end: usize,
    },
}

pub struct Exchange {
    limits: Limits,
    passing: Passing,
    answer: Answer,
    pending: VecDeque<Pending>,
    /// Broker entries in `pending`.
    owed_by_broker: usize,
    /// The id the next forwarded request gets.
    next_id: i32,
    /// The id of the last answer the broker sent (initially one before the first id).
    last_answered: i32,
    /// No more requests will come (the client finished, or the gateway is shutting down).
    requests_closed: bool,
    /// Whether clients log in at the gateway: their login requests are intercepted.
    edge_login: bool,
    /// The policy every request is decided by, if one is configured.
    policed: Option<Box<Policed>>,
    /// The client id was told to the observer, or the client has none.
    client_id_told: bool,
    client_seen: Instant,
    broker_seen: Instant,
    /// When the client last received a whole answer.
    answered: Instant,
}

impl Exchange {
    pub fn new(limits: Limits, now: Instant) -> Exchange {
        Exchange {
            limits,
            passing: Passing::Between,
            answer: Answer::Between,
            pending: VecDeque::new(),
            owed_by_broker: 0,
            next_id: 0,
            last_answered: -1,
            requests_closed: false,
            edge_login: false,
            policed: None,
            client_id_told: false,
            client_seen: now,
            broker_seen: now,
            answered: now,
        }
    }

    /// Has the login requests of a client that logs in at the gateway intercepted, and
    /// answered by the edge, instead of forwarded.
    pub fn with_edge_login(mut self) -> Exchange {
        self.edge_login = true;
        self
    }

    /// Has every request decided by a policy before any of it is forwarded.
    pub fn with_authorizer(mut self, authorizer: Authorizer) -> Exchange {
        self.policed = Some(Box::new(Policed {
            authorizer,
            filters: VecDeque::new(),
        }));
        self
    }

    // === the request direction ===

    /// The next step for the client's bytes in `input`, which arrived at `arrived`. Request
    /// heads are edited in place: the correlation id becomes the gateway's.
    pub fn on_client(
        &mut self,
        input: &mut [u8],
        arrived: Instant,
        observer: &dyn Observer,
    ) -> Result<Step, ExchangeError> {
        if !input.is_empty() {
            self.client_seen = self.client_seen.max(arrived);
        }
        match self.passing {
            Passing::Forward(left) => {
                let n = self.pass_request(left, input.len());
                return Ok(if n == 0 {
                    Step::Wait { need: 1 }
                } else {
                    Step::Forward(n)
                });
            }
            Passing::Drop(left) => {
                let n = left.min(input.len());
                self.passing = match left - n {
                    0 => Passing::Between,
                    rest => Passing::Drop(rest),
                };
                return Ok(if n == 0 {
                    Step::Wait { need: 1 }
                } else {
                    Step::Replace {
                        consumed: n,
                        with: Bytes::new(),
                    }
                });
            }
            Passing::Between => {}
        }
        let Some(head) = frame::peek_request(input, self.limits.max_frame).map_err(|source| {
            ExchangeError::Frame {
                side: Side::Client,
                source,
            }
        })?
        else {
            return Ok(Step::Wait {
                need: input.len() + 1,
            });
        };
        if !self.client_id_told {
            self.tell_client_id(&input[..input.len().min(head.frame_len)], observer);
        }
        match admit(&head, self.edge_login)? {
            Admit::Intercept => {
                if head.frame_len > MAX_INTERCEPTED {
                    return Err(ExchangeError::Frame {
                        side: Side::Client,
                        source: FrameError::TooLarge {
                            size: (head.frame_len - frame::SIZE_PREFIX) as i32,
                            max: MAX_INTERCEPTED,
                        },
                    });
                }
                if input.len() < head.frame_len {
                    return Ok(Step::Wait {
                        need: head.frame_len,
                    });
                }
                observer.request(head.api_key, head.frame_len);
                self.pending.push_back(Pending::Intercepted(None));
                Ok(Step::Intercept {
                    len: head.frame_len,
                })
            }
            Admit::Local(answer) => {
                observer.request(head.api_key, head.frame_len);
                self.pending.push_back(Pending::Local(answer));
                self.passing = Passing::Drop(head.frame_len);
                self.on_client(input, arrived, observer)
            }
            Admit::Forward(rewrite) => {
                let answered = head.expects_response();
                if answered && self.owed_by_broker >= self.limits.max_in_flight {
                    return Ok(Step::Full);
                }
                if self.policed.is_some() {
                    return self.decide(&head, rewrite, input, arrived, observer);
                }
                observer.request(head.api_key, head.frame_len);
                let id = self.next_id;
                self.next_id = id.wrapping_add(1);
                frame::set_request_correlation_id(input, id);
                self.expect(&head, id, rewrite, arrived);
                let n = self.pass_request(head.frame_len, input.len());
                Ok(Step::Forward(n))
            }
        }
    }

    /// Remembers the answer a forwarded request with the gateway's `id` is owed, if any.
    #[inline]
    fn expect(&mut self, head: &RequestHead, id: i32, rewrite: Option<Rewrite>, sent: Instant) {
        if head.expects_response() {
            self.owed_by_broker += 1;
            self.pending.push_back(Pending::Broker {
                id,
                client_id: head.correlation_id,
                api_key: head.api_key,
                api_version: head.api_version,
                rewrite,
                sent,
            });
        }
    }

    /// The next step for a request under the policy: once it is whole, forwarded as it is
    /// or edited, answered by the gateway, or the connection closed. Kept out of line: the
    /// streaming path, which every request without a policy takes, stays as small as it was.
    #[inline(never)]
    fn decide(
        &mut self,
        head: &RequestHead,
        rewrite: Option<Rewrite>,
        input: &mut [u8],
        arrived: Instant,
        observer: &dyn Observer,
    ) -> Result<Step, ExchangeError> {
        // Refusals wait in line too: a client sending refused requests behind a slow answer
        // is held to the same bound as one sending requests the broker answers.
        if self.pending.len() >= self.limits.max_in_flight {
            return Ok(Step::Full);
        }
        if input.len() < head.frame_len {
            return Ok(Step::Wait {
                need: head.frame_len,
            });
        }
        let Some(policed) = &mut self.policed else {
            return Err(ExchangeError::NotRewritten);
        };
        let authorizer = &policed.authorizer;
        observer.request(head.api_key, head.frame_len);
        let api_key = head.api_key;
        let decided = {
            let frame = &input[..head.frame_len];
            let names = authorizer.topics.read();
            let verdict = match &authorizer.principal {
                Some(principal) => {
                    verdict::authorize(&authorizer.policy, principal, frame, &*names)
                }
                // Only the login requests, which never reach here when the edge answers
                // them, pass before a login.
                None if LOGIN_APIS.iter().any(|api| *api as i16 == api_key) => Verdict::Forward {
                    edited: None,
                    filter: None,
                },
                None => {
                    observer.denied(api_key, &closing("not_logged_in"), false);
                    return Err(ExchangeError::NotLoggedIn { api_key });
                }
            };
            // What outlives the borrows of the frame and the map.
            match verdict {
                Verdict::Forward { edited, filter } => (edited, filter),
                Verdict::Deny {
                    denial,
                    answer: Some(answer),
                } => {
                    observer.denied(api_key, &denial, true);
                    drop(names);
                    self.pending.push_back(Pending::Local(answer));
                    return Ok(Step::Replace {
                        consumed: head.frame_len,
                        with: Bytes::new(),
                    });
                }
                Verdict::Deny {
                    denial,
                    answer: None,
                } => {
                    observer.denied(api_key, &denial, false);
                    return Err(ExchangeError::Denied {
                        api_key,
                        reason: denial.reason,
                    });
                }
                Verdict::Close(refusal) => {
                    observer.denied(api_key, &closing(refusal.code()), false);
                    return Err(ExchangeError::Refused { api_key, refusal });
                }
            }
        };
        let (edited, filter) = decided;
        let id = self.next_id;
        self.next_id = id.wrapping_add(1);
        if let Some(filter) = filter.filter(|_| head.expects_response()) {
            policed.filters.push_back((id, filter));
        }
        self.expect(head, id, rewrite, arrived);
        match edited {
            None => {
                frame::set_request_correlation_id(input, id);
                Ok(Step::Forward(head.frame_len))
            }
            Some(edited) => {
                let mut edited = BytesMut::from(&edited[..]);
                frame::set_request_correlation_id(&mut edited, id);
                Ok(Step::Replace {
                    consumed: head.frame_len,
                    with: edited.freeze(),
                })
            }
        }
    }

    /// The edge's answer to the oldest request it intercepted.
    pub fn answer_intercepted(&mut self, answer: Bytes) {
        if let Some(slot) = self.pending.iter_mut().find_map(|p| match p {
            Pending::Intercepted(slot @ None) => Some(slot),
            _ => None,
        }) {
            *slot = Some(answer);
        }
    }

    /// Tells the observer the client id in the head of `frame` (the bytes of one request
    /// that have arrived), once its bytes are all there; until then, the next request tries.
    fn tell_client_id(&mut self, frame: &[u8], observer: &dyn Observer) {
        // Right after the correlation id, a classic nullable string in every header version.
        const AT: usize = frame::SIZE_PREFIX + 8;
        let Some(len) = frame.get(AT..AT + 2) else {
            return;
        };
        let len = i16::from_be_bytes([len[0], len[1]]);
        let Ok(len) = usize::try_from(len) else {
            // Null: the client has none.
            self.client_id_told = true;
            return;
        };
        let Some(id) = frame.get(AT + 2..AT + 2 + len.min(MAX_CLIENT_ID)) else {
            return;
        };
        self.client_id_told = true;
        // A cut may split a character; a client id that is not UTF-8 shows up to its first
        // bad byte.
        let id = match std::str::from_utf8(id) {
            Ok(id) => id,
            Err(e) => std::str::from_utf8(&id[..e.valid_up_to()]).unwrap_or_default(),
        };
        observer.client_id(id);
    }

    /// Counts `available` bytes against the `left` of the request being forwarded.
    fn pass_request(&mut self, left: usize, available: usize) -> usize {
        let n = left.min(available);
        self.passing = match left - n {
            0 => Passing::Between,
            rest => Passing::Forward(rest),
        };
        n
    }

    /// Bytes of the request being forwarded that the pump may pass without showing them:
    /// moved socket to socket, for one.
    pub fn request_passthrough(&self) -> usize {
        match self.passing {
            Passing::Forward(left) => left,
            _ => 0,
        }
    }

    /// `n` bytes of [`Exchange::request_passthrough`] went by at `now`.
    pub fn request_passed(&mut self, n: usize, now: Instant) {
        if let Passing::Forward(left) = self.passing {
            self.client_seen = now;
            self.pass_request(left, n);
        }
    }

    /// Whether the client's stream stands between two requests: only there may it end, or
    /// the gateway stop reading, without leaving the broker half a request.
    pub fn at_request_boundary(&self) -> bool {
        self.passing == Passing::Between
    }

    /// No more requests will come; the answers still owed are delivered, then the exchange is
    /// [`finished`](Exchange::finished).
    pub fn close_requests(&mut self) {
        self.requests_closed = true;
    }

    // === the response direction ===

    /// The next step for the broker's bytes in `input`, which arrived at `arrived`. Answer
    /// heads are edited in place: the correlation id goes back to the client's.
    pub fn on_broker(
        &mut self,
        input: &mut [u8],
        arrived: Instant,
        observer: &dyn Observer,
    ) -> Result<Step, ExchangeError> {
        if !input.is_empty() {
            self.broker_seen = self.broker_seen.max(arrived);
        }
        match self.answer {
            Answer::Forward(left) => {
                let n = self.pass_answer(left, input.len(), arrived);
                return Ok(if n == 0 {
                    Step::Wait { need: 1 }
                } else {
                    Step::Forward(n)
                });
            }
            Answer::Drop(left) => {
                let n = left.min(input.len());
                self.answer = match left - n {
                    0 => Answer::Between,
                    rest => Answer::Drop(rest),
                };
                return Ok(if n == 0 {
                    Step::Wait { need: 1 }
                } else {
                    Step::Replace {
                        consumed: n,
                        with: Bytes::new(),
                    }
                });
            }
            Answer::Hold {
                kind,
                api_key,
                version,
                len,
                tried,
            } => {
                let available = input.len().min(len);
                // Walked again only once the bytes have doubled: linear in the answer's size.
                let next = tried.saturating_mul(2).max(tried + 4096).min(len);
                if available < next {
                    return Ok(Step::Wait { need: next });
                }
                let end =
                    rewrite::extent(kind, version, &input[..available]).inspect_err(|_| {
                        observer.rewrite(api_key, false);
                    })?;
                let Some(end) = end else {
                    if available >= self.limits.max_held {
                        return Err(ExchangeError::HeldTooLarge {
                            api_key,
                            size: available,
                            max: self.limits.max_held,
                        });
                    }
                    self.answer = Answer::Hold {
                        kind,
                        api_key,
                        version,
                        len,
                        tried: available,
                    };
                    let need = available.saturating_mul(2).max(available + 4096);
                    return Ok(Step::Wait {
                        need: need.min(len).min(self.limits.max_held),
                    });
                };
                self.answer = Answer::Rewriting {
                    kind,
                    api_key,
                    version,
                    len,
                    end,
                };
                return Ok(Step::Rewrite { len: end });
            }
            Answer::Stream(walk) => return self.stream(walk, input, arrived),
            Answer::Whole { rewrite, len } => {
                if input.len() < len {
                    return Ok(Step::Wait { need: len });
                }
                self.answer = Answer::Filtering { rewrite };
                return Ok(Step::Rewrite { len });
            }
            Answer::Rewriting { .. } | Answer::RewritingTail(_) | Answer::Filtering { .. } => {
                return Err(ExchangeError::NotRewritten)
            }
            Answer::Between => {}
        }
        // An answer of the gateway's own goes out when its turn comes, before any broker bytes.
        match self.pending.front() {
            Some(Pending::Local(_) | Pending::Intercepted(Some(_))) => {
                if let Some(Pending::Local(answer) | Pending::Intercepted(Some(answer))) =
                    self.pending.pop_front()
                {
                    self.answered = arrived;
                    return Ok(Step::Replace {
                        consumed: 0,
                        with: answer,
                    });
                }
            }
            Some(Pending::Intercepted(None)) => return Ok(Step::Pause),
            _ => {}
        }
        let Some(head) = frame::peek_response(input, self.limits.max_frame).map_err(|source| {
            ExchangeError::Frame {
                side: Side::Broker,
                source,
            }
        })?
        else {
            return Ok(Step::Wait {
                need: input.len() + 1,
            });
        };
        let got = head.correlation_id;
        match self.pending.front() {
            Some(Pending::Broker { id, .. }) if *id == got => {}
            front => {
                let bound = match front {
                    Some(Pending::Broker { id, .. }) => *id,
                    _ => self.next_id,
                };
                // Ids between the last answer and the next one due went to acks=0 requests.
                let distance = |id: i32| id.wrapping_sub(self.last_answered) as u32;
                if distance(got) != 0 && distance(got) < distance(bound) {
                    self.last_answered = got;
                    self.answer = Answer::Drop(head.frame_len);
                    return self.on_broker(input, arrived, observer);
                }
                return Err(ExchangeError::Unattributed {
                    got,
                    due: match front {
                        Some(Pending::Broker { id, api_key, .. }) => Some((*id, *api_key)),
                        _ => None,
                    },
                });
            }
        }
        let Some(Pending::Broker {
            client_id,
            api_key,
            api_version,
            rewrite,
            sent,
            ..
        }) = self.pending.pop_front()
        else {
            return Err(ExchangeError::Unattributed { got, due: None });
        };
        self.owed_by_broker -= 1;
        self.last_answered = got;
        frame::set_response_correlation_id(input, client_id);
        observer.response(
            api_key,
            head.frame_len,
            arrived.saturating_duration_since(sent),
        );
        let filtered = self
            .policed
            .as_ref()
            .and_then(|p| p.filters.front())
            .is_some_and(|(id, _)| *id == got);
        self.answer = match (filtered, rewrite) {
            (true, _) if head.frame_len > self.limits.max_held => {
                return Err(ExchangeError::HeldTooLarge {
                    api_key,
                    size: head.frame_len,
                    max: self.limits.max_held,
                })
            }
            (true, rewrite) => Answer::Whole {
                rewrite,
                len: head.frame_len,
            },
            (false, Some(Rewrite::Fetch)) => Answer::Stream(FetchWalk::new(head.frame_len)),
            (false, Some(kind)) => Answer::Hold {
                kind,
                api_key,
                version: api_version,
                len: head.frame_len,
                tried: 0,
            },
            (false, None) => Answer::Forward(head.frame_len),
        };
        self.on_broker(input, arrived, observer)
    }

    /// The next step of a Fetch answer read as it streams.
    fn stream(
        &mut self,
        mut walk: FetchWalk,
        input: &[u8],
        arrived: Instant,
    ) -> Result<Step, ExchangeError> {
        let malformed = |e: crate::rewrite::wire::WireError| RewriteError::Decode {
            api: ApiKey::Fetch as i16,
            version: 16,
            reason: e.to_string(),
        };
        let step = match walk.next(input).map_err(malformed)? {
            Next::Pass(0) => {
                self.answer = Answer::Between;
                self.answered = arrived;
                return Ok(Step::Wait { need: 1 });
            }
            Next::Pass(n) => Step::Forward(n),
            Next::Records(left) => match left.min(input.len()) {
                0 => Step::Wait { need: 1 },
                n => {
                    walk.passed(n);
                    Step::Forward(n)
                }
            },
            Next::Tail(n) | Next::Need(n) if n > self.limits.max_held => {
                return Err(ExchangeError::HeldTooLarge {
                    api_key: ApiKey::Fetch as i16,
                    size: n,
                    max: self.limits.max_held,
                })
            }
            Next::Tail(n) if input.len() >= n => {
                self.answer = Answer::RewritingTail(walk);
                return Ok(Step::Rewrite { len: n });
            }
            Next::Tail(n) | Next::Need(n) => Step::Wait { need: n },
        };
        self.answer = Answer::Stream(walk);
        Ok(step)
    }

    /// Counts `available` bytes against the `left` of the answer being streamed.
    fn pass_answer(&mut self, left: usize, available: usize, now: Instant) -> usize {
        let n = left.min(available);
        self.answer = match left - n {
            0 => {
                self.answered = now;
                Answer::Between
            }
            rest => Answer::Forward(rest),
        };
        n
    }

    /// Rewrites the beginning of an answer [`Step::Rewrite`] handed out (`held`: its bytes,
    /// size prefix included), received at `now`, and gives what goes to the client instead,
    /// with the size of the whole rewritten answer. The rest of the answer then streams.
    pub fn rewrite_held(
        &mut self,
        held: Bytes,
        now: Instant,
        book: &dyn AddressBook,
        observer: &dyn Observer,
    ) -> Result<Bytes, ExchangeError> {
        let (kind, api_key, version, len, end) = match self.answer {
            Answer::Rewriting {
                kind,
                api_key,
                version,
                len,
                end,
            } => (kind, api_key, version, len, end),
            Answer::RewritingTail(_) => {
                let tail = fetch::rewrite_tail(&held, book)
                    .map_err(|e| e.into_rewrite_error(Rewrite::Fetch, 16))
                    .and_then(|tail| {
                        (tail.len() == held.len()).then_some(tail).ok_or_else(|| {
                            RewriteError::Decode {
                                api: ApiKey::Fetch as i16,
                                version: 16,
                                reason: "the rewritten tail changed length".to_owned(),
                            }
                        })
                    });
                observer.rewrite(ApiKey::Fetch as i16, tail.is_ok());
                self.answer = Answer::Between;
                self.answered = now;
                return Ok(tail?);
            }
            Answer::Filtering { rewrite } => {
                self.answer = Answer::Between;
                self.answered = now;
                let (_, filter) = self
                    .policed
                    .as_mut()
                    .and_then(|p| p.filters.pop_front())
                    .ok_or(ExchangeError::NotRewritten)?;
                return self.filter_held(held, filter, rewrite, book, observer);
            }
            _ => return Err(ExchangeError::NotRewritten),
        };
        let rewritten = rewrite::prefix(kind, version, &held, book).and_then(|r| {
            r.filter(|r| r.consumed == end)
                .ok_or_else(|| RewriteError::Decode {
                    api: kind.api_key(),
                    version,
                    reason: format!("the rewrite did not end where its measure did (byte {end})"),
                })
        });
        observer.rewrite(api_key, rewritten.is_ok());
        let rewritten = rewritten?;
        self.answer = if len > end {
            Answer::Forward(len - end)
        } else {
            self.answered = now;
            Answer::Between
        };
        Ok(rewritten.out)
    }

    /// A whole answer to filter: the topic ids it names are learned (from the answer as the
    /// broker sent it), what the principal may not see is dropped, and then the broker
    /// addresses are rewritten, last, so that nothing of the filter's making escapes the
    /// rewrite.
    fn filter_held(
        &self,
        held: Bytes,
        filter: Filter,
        rewrite: Option<Rewrite>,
        book: &dyn AddressBook,
        observer: &dyn Observer,
    ) -> Result<Bytes, ExchangeError> {
        let failed = |source| ExchangeError::Filter {
            api_key: filter.api_key,
            source,
        };
        let authorizer = &self
            .policed
            .as_ref()
            .ok_or(ExchangeError::NotRewritten)?
            .authorizer;
        authorizer
            .topics
            .learn(filter.api_key, filter.version, &held)
            .map_err(|e| failed(FilterError::Frame(e)))?;
        // Only a principal's requests are given a filter.
        let principal = authorizer.principal.as_deref().unwrap_or_default();
        let filtered = filter
            .apply(&held, &authorizer.policy, principal)
            .map_err(failed)?;
        for name in &filtered.refused {
            observer.denied(filter.api_key, &filter.denial(name), true);
        }
        let filtered = filtered.frame.unwrap_or(held);
        let Some(kind) = rewrite else {
            return Ok(filtered);
        };
        let rewritten = rewrite::response(kind, filter.version, filtered, book);
        observer.rewrite(filter.api_key, rewritten.is_ok());
        Ok(rewritten?)
    }

    /// Bytes of the answer being streamed that the pump may pass without showing them.
    pub fn response_passthrough(&self) -> usize {
        match self.answer {
            Answer::Forward(left) => left,
            Answer::Stream(walk) => walk.records_left(),
            _ => 0,
        }
    }

    /// `n` bytes of [`Exchange::response_passthrough`] went by at `now`.
    pub fn response_passed(&mut self, n: usize, now: Instant) {
        match self.answer {
            Answer::Forward(left) => {
                self.broker_seen = now;
                self.pass_answer(left, n, now);
            }
            Answer::Stream(mut walk) => {
                self.broker_seen = now;
                walk.passed(n);
                self.answer = Answer::Stream(walk);
            }
            _ => {}
        }
    }

    /// Requests are closed and every answer owed has gone out: the session may end.
    pub fn finished(&self) -> bool {
        self.requests_closed && self.pending.is_empty() && self.answer == Answer::Between
    }

    /// Whether the broker owes an answer, or is in the middle of one.
    pub fn broker_owes(&self) -> bool {
        self.owed_by_broker > 0 || self.answer != Answer::Between
    }

    /// Whether an answer of the gateway's own is waiting to go out.
    pub fn local_answer_due(&self) -> bool {
        self.answer == Answer::Between
            && matches!(
                self.pending.front(),
                Some(Pending::Local(_) | Pending::Intercepted(Some(_)))
            )
    }

    // === idleness ===

    /// The client sent nothing for a while: is that idleness, and if not, how much longer
    /// may it stay silent?
    pub fn client_silence(&self, now: Instant, limit: Duration) -> Result<Duration, Idle> {
        let (since, when) = if self.passing != Passing::Between {
            (self.client_seen, "in the middle of a request")
        } else if !self.pending.is_empty() || self.answer != Answer::Between {
            // Waiting for an answer is not idleness; the broker's silence is judged instead.
            return Ok(limit);
        } else {
            (self.client_seen.max(self.answered), "between requests")
        };
        left_of(since, now, limit).ok_or(Idle {
            side: Side::Client,
            when,
        })
    }

    /// The broker sent nothing for a while: idleness only with an answer due.
    pub fn broker_silence(&self, now: Instant, limit: Duration) -> Result<Duration, Idle> {
        let oldest = self.pending.iter().find_map(|p| match p {
            Pending::Broker { sent, .. } => Some(*sent),
            Pending::Local(_) | Pending::Intercepted(_) => None,
        });
        let since = match (self.answer, oldest) {
            (Answer::Between, None) => return Ok(limit),
            (Answer::Between, Some(sent)) => self.broker_seen.max(sent),
            _ => self.broker_seen,
        };
        left_of(since, now, limit).ok_or(Idle {
            side: Side::Broker,
            when: "with a response due",
        })
    }
}

/// What is left of `limit` measured from `since`; `None` when it has run out.
fn left_of(since: Instant, now: Instant, limit: Duration) -> Option<Duration> {
    limit
        .checked_sub(now.saturating_duration_since(since))
        .filter(|left| !left.is_zero())
}

/// How a request that closes the connection reads in the audit log: the cluster was asked
/// for something no client sends.
fn closing(reason: &'static str) -> Denial<'static> {
    Denial {
        operation: Operation::ClusterAdmin,
        target: Target::Resource(Resource::Cluster),
        error: 0,
        reason,
    }
}

/// The largest request the edge answers itself: logins are small.
const MAX_INTERCEPTED: usize = 1024 * 1024;

/// How a request is handled, decided from its head alone.
enum Admit {
    /// Forward it; its answer needs this rewrite, if any.
    Forward(Option<Rewrite>),
    /// Swallow it; this is the gateway's answer.
    Local(Bytes),
    /// Hand it to the edge, which answers it.
    Intercept,
}

/// The requests a client that logs in at the gateway has answered by the edge.
const LOGIN_APIS: [ApiKey; 3] = [
    ApiKey::ApiVersions,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
];

fn admit(head: &RequestHead, edge_login: bool) -> Result<Admit, ExchangeError> {
    if edge_login && LOGIN_APIS.iter().any(|api| *api as i16 == head.api_key) {
        return Ok(Admit::Intercept);
    }
    let rewrite = Rewrite::for_api(head.api_key, head.api_version);
    if head.api_key == ApiKey::SaslHandshake as i16 && head.api_version == 0 {
        return Err(ExchangeError::SaslHandshakeV0);
    }
    if !api_versions::limit(head.api_key).allows(head.api_version) {
        if rewrite == Some(Rewrite::ApiVersions) && head.api_version > 0 {
            // As a broker does: answer in the v0 layout so the client can retry lower.
            return Ok(Admit::Local(api_versions::unsupported_version(
                head.correlation_id,
                api_versions::api_versions_max(),
            )));
        }
        return Err(ExchangeError::NotOffered {
            api_key: head.api_key,
            api_version: head.api_version,
        });
    }
    Ok(Admit::Forward(rewrite))
}
