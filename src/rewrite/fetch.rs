//! Fetch (key 1), v16 and later: KIP-951's `NodeEndpoints` is a tagged field at the very end
//! of the answer, after every partition's records, and the size prefix goes out first. The
//! records are the bulk of what a gateway moves and must keep going socket to socket, so a
//! Fetch answer is never held: [`FetchWalk`] reads its structure as it streams (the small
//! heads of topics and partitions), lets each partition's records pass unseen, and holds only
//! the answer's own tagged fields at the end. Those are rewritten to exactly their length
//! ([`rewrite_tail`]), so the size already sent stays true:
//!
//! - the gateway's addresses fit: they replace the cluster's, and an unknown tagged field
//!   (which every reader skips, KIP-482) takes up the bytes left over;
//! - they do not fit (a gateway host longer than the brokers'): `NodeEndpoints` is withheld,
//!   its bytes turned into an unknown tagged field of the same length. Clients then learn
//!   the new leader from Metadata, which is rewritten, as clients before KIP-951 always did.

use bytes::{BufMut, Bytes, BytesMut};

use super::share::node_endpoints;
use super::wire::{put_uvarint, Walk, WireError};
use super::{AddressBook, Failure};
use crate::proxy::frame::SIZE_PREFIX;

/// The tag of `NodeEndpoints` among a Fetch answer's own tagged fields.
const NODE_ENDPOINTS: u32 = 0;
/// A tag no version of Fetch defines, for bytes every reader skips. One varint byte.
const FILLER: u32 = 127;

/// What comes next in a streaming Fetch answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// These many bytes, at the front of the input, were read and go on as they are.
    Pass(usize),
    /// These many bytes are records: they go on without being looked at.
    Records(usize),
    /// The answer's last `n` bytes, its own tagged fields: hold them all, then rewrite them
    /// with [`rewrite_tail`].
    Tail(usize),
    /// Nothing can be read before the input holds at least these many bytes.
    Need(usize),
}

/// Where a streaming Fetch answer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Size, header, throttle time, error code, session id, topic count.
    Head,
    /// A topic's id and partition count; `topics` topics left, this one included.
    Topic {
        topics: usize,
    },
    /// A partition's fields up to its records' length.
    Partition {
        topics: usize,
        partitions: usize,
    },
    /// A partition's records, `left` bytes of them still to pass.
    Records {
        topics: usize,
        partitions: usize,
        left: usize,
    },
    /// A partition's tagged fields.
    PartitionTags {
        topics: usize,
        partitions: usize,
    },
    /// A topic's tagged fields.
    TopicTags {
        topics: usize,
    },
    /// The answer's own tagged fields.
    Tail,
    Done,
}

/// A Fetch answer (v16 and later) read as it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchWalk {
    part: Part,
    /// Bytes of the answer (size prefix included) not yet passed.
    left: usize,
}

impl FetchWalk {
    /// The walk of an answer of `frame_len` bytes, size prefix included.
    pub fn new(frame_len: usize) -> FetchWalk {
        FetchWalk {
            part: Part::Head,
            left: frame_len,
        }
    }

    /// Record bytes that can pass now without being looked at.
    pub fn records_left(&self) -> usize {
        match self.part {
            Part::Records { left, .. } => left,
            _ => 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.part == Part::Done
    }

    /// The next step, given the answer's bytes from where the walk stands (`input` may hold
    /// more than the answer). Only `Pass` and `Records` advance the walk; `Records` counts
    /// as passed what [`FetchWalk::passed`] is told.
    pub fn next(&mut self, input: &[u8]) -> Result<Next, WireError> {
        let input = &input[..input.len().min(self.left)];
        let mut c = Cursor {
            bytes: input,
            pos: 0,
            limit: self.left,
        };
        let read = match self.part {
            Part::Head => c.head(),
            Part::Topic { .. } => c.topic(),
            Part::Partition { .. } => c.partition(),
            Part::Records { left, .. } => return Ok(Next::Records(left)),
            Part::PartitionTags { .. } | Part::TopicTags { .. } => c.tags().map(|()| 0),
            Part::Tail => return Ok(Next::Tail(self.left)),
            Part::Done => return Ok(Next::Pass(0)),
        };
        let count = match read {
            Ok(count) => count,
            Err(WireError::Incomplete { .. }) => {
                return Ok(Next::Need((input.len() + 1).max(c.pos + 1)))
            }
            Err(e) => return Err(e),
        };
        let n = c.pos;
        self.left -= n;
        self.part = match self.part {
            Part::Head => self.after_topics(count),
            Part::Topic { topics } => self.after_partitions(topics, count),
            Part::Partition { topics, partitions } => match count {
                0 => Part::PartitionTags { topics, partitions },
                left => Part::Records {
                    topics,
                    partitions,
                    left,
                },
            },
            Part::PartitionTags { topics, partitions } => {
                self.after_partitions(topics, partitions - 1)
            }
            Part::TopicTags { topics } => self.after_topics(topics - 1),
            other => other,
        };
        Ok(Next::Pass(n))
    }

    /// `n` record bytes went by.
    pub fn passed(&mut self, n: usize) {
        if let Part::Records {
            topics,
            partitions,
            left,
        } = self.part
        {
            let n = n.min(left);
            self.left -= n;
            self.part = match left - n {
                0 => Part::PartitionTags { topics, partitions },
                left => Part::Records {
                    topics,
                    partitions,
                    left,
                },
            };
        }
    }

    /// The tail went out rewritten.
    pub fn finished(&mut self) {
        self.left = 0;
        self.part = Part::Done;
    }

    fn after_topics(&self, topics: usize) -> Part {
        if topics == 0 {
            Part::Tail
        } else {
            Part::Topic { topics }
        }
    }

    fn after_partitions(&self, topics: usize, partitions: usize) -> Part {
        if partitions == 0 {
            Part::TopicTags { topics }
        } else {
            Part::Partition { topics, partitions }
        }
    }
}

/// Reads the pieces of a streaming Fetch answer out of the bytes at hand. Running out of them
/// is [`WireError::Incomplete`]; running past the answer's end (`limit`) is malformed.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    limit: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.limit)
            .ok_or(WireError::Short { at: self.pos })?;
        let bytes = self.bytes.get(self.pos..end).ok_or(WireError::Incomplete {
            at: self.bytes.len(),
        })?;
        self.pos = end;
        Ok(bytes)
    }

    fn uvarint(&mut self) -> Result<u32, WireError> {
        let at = self.pos;
        let mut value = 0u32;
        for i in 0..5 {
            let byte = self.take(1)?[0];
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::Varint { at })
    }

    /// A compact array's count (null reads as empty), checked against what is left: each
    /// element takes at least a byte.
    fn count(&mut self) -> Result<usize, WireError> {
        let at = self.pos;
        let count = (self.uvarint()? as usize).saturating_sub(1);
        if count > self.limit - self.pos {
            return Err(WireError::TooLong {
                what: "array",
                len: count,
                at,
                left: self.limit - self.pos,
            });
        }
        Ok(count)
    }

    fn tags(&mut self) -> Result<(), WireError> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }

    /// The answer's beginning; the topic count.
    fn head(&mut self) -> Result<usize, WireError> {
        self.take(SIZE_PREFIX + 4)?; // size, correlation id
        self.tags()?; // header tagged fields
        self.take(4 + 2 + 4)?; // throttle time, error code, session id
        self.count()
    }

    /// A topic's id; its partition count.
    fn topic(&mut self) -> Result<usize, WireError> {
        self.take(16)?;
        self.count()
    }

    /// A partition's fields before its records; the records' length.
    fn partition(&mut self) -> Result<usize, WireError> {
        // Index, error code, high watermark, last stable offset, log start offset.
        self.take(4 + 2 + 8 + 8 + 8)?;
        for _ in 0..self.count()? {
            self.take(8 + 8)?; // producer id, first offset
            self.tags()?;
        }
        self.take(4)?; // preferred read replica
        let len = (self.uvarint()? as usize).saturating_sub(1);
        if len > self.limit - self.pos {
            return Err(WireError::TooLong {
                what: "records",
                len,
                at: self.pos,
                left: self.limit - self.pos,
            });
        }
        Ok(len)
    }
}

/// Rewrites a Fetch answer's own tagged fields (`tail`, the answer's last bytes) to exactly
/// the same length: `NodeEndpoints` with the gateway's addresses and filler after it, or
/// withheld when those do not fit.
pub fn rewrite_tail(tail: &[u8], book: &dyn AddressBook) -> Result<Bytes, Failure> {
    // The tail is a frame of its own to the walk: give it a size prefix.
    let mut framed = BytesMut::with_capacity(SIZE_PREFIX + 4 + tail.len());
    framed.put_i32((4 + tail.len()) as i32);
    framed.put_i32(0);
    framed.put_slice(tail);
    let framed = framed.freeze();
    let mut walk = Walk::new(&framed, 0, true)?;
    let mut endpoints = None;
    walk.tagged(|walk, tag| {
        if tag != NODE_ENDPOINTS {
            return Ok::<_, Failure>(false);
        }
        endpoints = Some(walk.position());
        node_endpoints(walk, book)?;
        Ok(true)
    })?;
    if walk.position() != framed.len() {
        return Err(WireError::Short {
            at: walk.position(),
        }
        .into());
    }
    let rewritten = walk.finish(&framed).whole(&framed).slice(SIZE_PREFIX + 4..);
    match rewritten.len().cmp(&tail.len()) {
        std::cmp::Ordering::Equal => Ok(rewritten),
        std::cmp::Ordering::Less => {
            Ok(pad(&rewritten, tail.len()).unwrap_or_else(|| withhold(tail, endpoints)))
        }
        std::cmp::Ordering::Greater => Ok(withhold(tail, endpoints)),
    }
}

/// A whole Fetch answer rewritten: the records as they came, the tail rewritten in place.
pub fn rewrite_whole(frame: &Bytes, book: &dyn AddressBook) -> Result<Bytes, Failure> {
    let mut walk = FetchWalk::new(frame.len());
    let mut at = 0;
    loop {
        match walk.next(&frame[at..])? {
            Next::Pass(n) => at += n,
            Next::Records(n) => {
                walk.passed(n);
                at += n;
            }
            Next::Tail(n) => {
                let tail = rewrite_tail(&frame[at..at + n], book)?;
                if tail[..] == frame[at..] {
                    return Ok(frame.clone());
                }
                let mut out = BytesMut::from(&frame[..at]);
                out.put_slice(&tail);
                return Ok(out.freeze());
            }
            // The whole answer is at hand: wanting more means it ends too soon.
            Next::Need(_) => return Err(WireError::Short { at }.into()),
        }
    }
}

/// The tagged fields `fields` with filler after them, making them `len` bytes long: one more
/// field, or two where no single field takes exactly the room left (a size of 128 needs a
/// second varint byte, so 130 bytes of room cannot be one field).
fn pad(fields: &[u8], len: usize) -> Option<Bytes> {
    let mut c = Cursor {
        bytes: fields,
        pos: 0,
        limit: fields.len(),
    };
    let count = c.uvarint().ok()?;
    let rest = &fields[c.pos..];
    // The data length of one filler field taking exactly `room` bytes: tag, size, data.
    let fit = |room: usize| {
        (1..=5)
            .map(|size_len| room.checked_sub(1 + size_len))
            .find_map(|data| data.filter(|d| 1 + varint_len(*d) + d == room))
    };
    let mut out = BytesMut::with_capacity(len);
    let room = len.checked_sub(varint_len(count as usize + 1) + rest.len())?;
    if let Some(data) = fit(room) {
        put_uvarint(&mut out, count + 1);
        out.put_slice(rest);
        filler(&mut out, FILLER, data);
    } else {
        let room = len.checked_sub(varint_len(count as usize + 2) + rest.len() + 2)?;
        let data = fit(room)?;
        put_uvarint(&mut out, count + 2);
        out.put_slice(rest);
        filler(&mut out, FILLER - 1, 0);
        filler(&mut out, FILLER, data);
    }
    (out.len() == len).then(|| out.freeze())
}

/// A tagged field of `data` zero bytes that no reader knows.
fn filler(out: &mut BytesMut, tag: u32, data: usize) {
    put_uvarint(out, tag);
    put_uvarint(out, data as u32);
    out.put_bytes(0, data);
}

fn varint_len(value: usize) -> usize {
    let mut len = 1;
    let mut v = value >> 7;
    while v > 0 {
        len += 1;
        v >>= 7;
    }
    len
}

/// The tagged fields `tail` with `NodeEndpoints` (whose data starts at `data_at`, counted
/// from the walk's frame start) turned into filler of the same length.
fn withhold(tail: &[u8], data_at: Option<usize>) -> Bytes {
    let mut out = BytesMut::from(tail);
    let Some(data_at) = data_at.map(|at| at - SIZE_PREFIX - 4) else {
        return out.freeze();
    };
    // Back from the data: its size varint, then the tag (0: one byte).
    let mut size_at = data_at - 1;
    while size_at > 0 && out[size_at - 1] & 0x80 != 0 {
        size_at -= 1;
    }
    let tag_at = size_at - 1;
    let mut c = Cursor {
        bytes: &out[size_at..],
        pos: 0,
        limit: out.len() - size_at,
    };
    let size = c.uvarint().unwrap_or(0) as usize;
    out[tag_at] = FILLER as u8;
    for byte in &mut out[data_at..data_at + size] {
        *byte = 0;
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::testing::*;
    use crate::rewrite::Rewrite;
    use kafka_protocol::messages::fetch_response::*;
    use kafka_protocol::messages::{BrokerId, FetchResponse, ProducerId};
    use kafka_protocol::protocol::{Decodable, Message};

    fn answer(records: &[usize], hosts: &[&str]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, len)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_aborted_transactions(Some(vec![
                        AbortedTransaction::default().with_producer_id(ProducerId(i as i64))
                    ]))
                    .with_records(Some(Bytes::from(vec![i as u8; *len])))
                    .with_current_leader(
                        LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(2))
                            .with_leader_epoch(4),
                    )
            })
            .collect();
        FetchResponse::default()
            .with_session_id(9)
            .with_responses(vec![
                FetchableTopicResponse::default()
                    .with_topic_id(Default::default())
                    .with_partitions(partitions),
                FetchableTopicResponse::default().with_topic_id(Default::default()),
            ])
            .with_node_endpoints(
                hosts
                    .iter()
                    .enumerate()
                    .map(|(i, host)| {
                        NodeEndpoint::default()
                            .with_node_id(BrokerId(i as i32 + 1))
                            .with_host(s(host))
                            .with_port(9092)
                    })
                    .collect(),
            )
    }

    /// Streams `frame` through a walk in pieces of `cut` bytes, as the exchange would, and
    /// returns what goes out.
    fn stream(frame: &[u8], cut: usize, book: &Book) -> Vec<u8> {
        let mut walk = FetchWalk::new(frame.len());
        let mut out = Vec::new();
        let mut at = 0;
        let mut have = 0;
        while !walk.is_done() {
            have = (have + cut).min(frame.len()).max(have);
            let input = &frame[at..have];
            match walk.next(input).unwrap() {
                Next::Pass(0) if walk.is_done() => break,
                Next::Pass(n) => {
                    out.extend_from_slice(&input[..n]);
                    at += n;
                }
                Next::Records(left) => {
                    let n = left.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    walk.passed(n);
                    at += n;
                }
                Next::Tail(n) if input.len() >= n => {
                    out.extend_from_slice(&rewrite_tail(&input[..n], book).unwrap());
                    walk.finished();
                    at += n;
                }
                Next::Tail(_) | Next::Need(_) => {
                    assert!(have < frame.len(), "stuck with the whole answer at hand");
                }
            }
        }
        assert_eq!(at, frame.len(), "the walk ended before the answer");
        out
    }

    #[test]
    fn every_cut_streams_the_records_and_rewrites_the_hints_in_place() {
        let long = "kafka-1.kafka-headless.kafka.svc.cluster.local";
        for version in 16..=FetchResponse::VERSIONS.max {
            let original = answer(&[0, 3, 700], &[long, long]);
            let frame = frame(Rewrite::Fetch, version, 3, &original);
            for cut in [1, 2, 3, 7, 64, frame.len()] {
                let book = Book::default();
                let out = stream(&frame, cut, &book);
                assert_eq!(out.len(), frame.len(), "same length, cut {cut}");
                let mut body = Bytes::from(out).slice(4..);
                kafka_protocol::messages::ResponseHeader::decode(&mut body, 1).unwrap();
                let mut got = FetchResponse::decode(&mut body, version).unwrap();
                assert!(body.is_empty());
                // The bytes the gateway's shorter addresses left over: a field no reader knows.
                let filler = got.unknown_tagged_fields.remove(&127).unwrap();
                assert!(filler.iter().all(|b| *b == 0));
                assert!(got.unknown_tagged_fields.is_empty());
                let mut expected = original.clone();
                for node in &mut expected.node_endpoints {
                    node.host = s(GATEWAY_HOST);
                    node.port = 19000 + node.node_id.0;
                }
                assert_eq!(got, expected, "v{version}, cut {cut}");
                assert_eq!(book.learned.borrow().len(), 2);
            }
        }
    }

    #[test]
    fn hints_that_do_not_fit_are_withheld_in_place() {
        // A broker host shorter than the gateway's: the gateway's does not fit.
        let original = answer(&[10], &["k1"]);
        let frame = frame(Rewrite::Fetch, 16, 3, &original);
        let out = stream(&frame, 5, &Book::default());
        assert_eq!(out.len(), frame.len());
        assert_absent_text(&out, "k1");
        let mut body = Bytes::from(out).slice(4..);
        kafka_protocol::messages::ResponseHeader::decode(&mut body, 1).unwrap();
        let got = FetchResponse::decode(&mut body, 16).unwrap();
        assert!(got.node_endpoints.is_empty());
        assert_eq!(got.unknown_tagged_fields.len(), 1, "the hints, as filler");
        assert_eq!(got.responses, original.responses);
    }

    #[test]
    fn an_answer_without_hints_passes_as_it_came() {
        let original = answer(&[5, 0, 40_000], &[]);
        let frame = frame(Rewrite::Fetch, 17, 3, &original);
        assert_eq!(stream(&frame, 100, &Book::default()), frame.to_vec());
    }

    #[test]
    fn padding_lands_on_every_length() {
        // Leftovers of 2 to 20,000 bytes: filler takes exactly the room left.
        for extra in 2..20_000 {
            let base = [1u8, 0, 0];
            let padded = pad(&base, base.len() + extra).unwrap();
            assert_eq!(padded.len(), base.len() + extra, "{extra}");
            let mut c = Cursor {
                bytes: &padded,
                pos: 0,
                limit: padded.len(),
            };
            let count = c.uvarint().unwrap();
            assert!((2..=3).contains(&count));
            c.tags_body(count).unwrap();
            assert_eq!(c.pos, padded.len(), "{extra}");
        }
        // One byte left over cannot be filled.
        assert!(pad(&[1u8, 0, 0], 4).is_none());
    }

    impl Cursor<'_> {
        /// The fields of a tagged-field section whose count was read already.
        fn tags_body(&mut self, count: u32) -> Result<(), WireError> {
            for _ in 0..count {
                self.uvarint()?;
                let size = self.uvarint()? as usize;
                self.take(size)?;
            }
            Ok(())
        }
    }

    #[test]
    fn malformed_answers_are_errors_never_guesses() {
        // The answer's size cut short inside the records: their length runs past its end.
        let whole = frame(Rewrite::Fetch, 16, 3, &answer(&[100], &[]));
        let mut broken = whole[..whole.len() - 60].to_vec();
        let size = (broken.len() - 4) as i32;
        broken[..4].copy_from_slice(&size.to_be_bytes());
        let mut walk = FetchWalk::new(broken.len());
        let mut at = 0;
        let failed = loop {
            match walk.next(&broken[at..]) {
                Ok(Next::Pass(n)) if n > 0 => at += n,
                Ok(other) => break Err(other),
                Err(e) => break Ok(e),
            }
        };
        assert!(
            matches!(
                failed,
                Ok(WireError::TooLong {
                    what: "records",
                    ..
                })
            ),
            "{failed:?}"
        );
    }

    fn assert_absent_text(haystack: &[u8], needle: &str) {
        assert!(!haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes()));
    }
}
