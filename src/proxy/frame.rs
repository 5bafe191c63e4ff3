//! Kafka framing and header peeks. Pure functions over byte slices, no I/O.
//!
//! Every Kafka message is a 4-byte big-endian size followed by that many bytes. The session
//! only needs the first few fields of each frame to decide what to do with it, so these
//! functions look at a prefix and report `Ok(None)` while that prefix is still incomplete:
//! "not enough bytes yet" is the normal state of a stream, not an error.

use kafka_protocol::messages::ApiKey;

/// Bytes of the size prefix in front of every frame.
pub const SIZE_PREFIX: usize = 4;

/// The longest request head we are willing to wait for. A request header holds a client id
/// of at most 32 KiB, Produce adds a transactional id of at most 32 KiB; the rest is slack
/// for tagged fields. A head that does not fit is refused rather than buffered without end.
pub const MAX_REQUEST_HEAD: usize = 96 * 1024;

const PRODUCE: i16 = ApiKey::Produce as i16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} is negative")]
    NegativeSize { size: i32 },
    #[error("frame size {size} exceeds the limit of {max} bytes")]
    TooLarge { size: i32, max: usize },
    #[error("frame of {size} bytes is too short for a {what} header")]
    TooShort { size: usize, what: &'static str },
    #[error("request header is longer than {limit} bytes")]
    HeadTooLong { limit: usize },
    #[error("malformed request header: {reason}")]
    Malformed { reason: &'static str },
}

/// What the session needs to know about a request before forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// Whole frame length, size prefix included.
    pub frame_len: usize,
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    /// `acks` of a Produce request; `None` for every other API.
    pub acks: Option<i16>,
}

impl RequestHead {
    /// Whether the broker will answer this request. Produce with `acks=0` is the only
    /// request Kafka never answers; waiting for its response would stall the session.
    pub fn expects_response(&self) -> bool {
        self.acks != Some(0)
    }
}

/// What the session needs to know about a response before forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Whole frame length, size prefix included.
    pub frame_len: usize,
    pub correlation_id: i32,
}

/// A buffer for a frame being built, with room for its size prefix.
pub fn begin(capacity: usize) -> bytes::BytesMut {
    let mut out = bytes::BytesMut::with_capacity(SIZE_PREFIX + capacity);
    out.extend_from_slice(&[0; SIZE_PREFIX]);
    out
}

/// Finishes a frame started with [`begin`]: writes its size prefix. Frames built here are
/// far below 2 GiB (the largest is a rewritten response, itself under `max_frame_bytes`).
pub fn seal(mut out: bytes::BytesMut) -> bytes::Bytes {
    let size = (out.len() - SIZE_PREFIX) as i32;
    out[..SIZE_PREFIX].copy_from_slice(&size.to_be_bytes());
    out.freeze()
}

/// Puts `id` in place of a request's correlation id (after size, api key and version). The
/// head was peeked, so the bytes are there.
pub fn set_request_correlation_id(frame: &mut [u8], id: i32) {
    if let Some(field) = frame.get_mut(SIZE_PREFIX + 4..SIZE_PREFIX + 8) {
        field.copy_from_slice(&id.to_be_bytes());
    }
}

/// Puts `id` in place of a response's correlation id (right after the size).
pub fn set_response_correlation_id(frame: &mut [u8], id: i32) {
    if let Some(field) = frame.get_mut(SIZE_PREFIX..SIZE_PREFIX + 4) {
        field.copy_from_slice(&id.to_be_bytes());
    }
}

/// Reads the size prefix: the whole frame length (prefix included) once 4 bytes are there.
pub fn frame_len(buf: &[u8], max_frame: usize) -> Result<Option<usize>, FrameError> {
    let Some(size) = read_i32(buf, 0) else {
        return Ok(None);
    };
    if size < 0 {
        return Err(FrameError::NegativeSize { size });
    }
    let len = size as usize;
    if len > max_frame {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame,
        });
    }
    Ok(Some(SIZE_PREFIX + len))
}

/// Peeks a response: its length and correlation id.
pub fn peek_response(buf: &[u8], max_frame: usize) -> Result<Option<ResponseHead>, FrameError> {
    let Some(frame_len) = frame_len(buf, max_frame)? else {
        return Ok(None);
    };
    if frame_len < SIZE_PREFIX + 4 {
        return Err(FrameError::TooShort {
            size: frame_len - SIZE_PREFIX,
            what: "response",
        });
    }
    Ok(
        read_i32(buf, SIZE_PREFIX).map(|correlation_id| ResponseHead {
            frame_len,
            correlation_id,
        }),
    )
}

/// Peeks a request: api key, version, correlation id, and for Produce the `acks` field,
/// which sits after the client id, the header's tagged fields and the transactional id.
pub fn peek_request(buf: &[u8], max_frame: usize) -> Result<Option<RequestHead>, FrameError> {
    let Some(frame_len) = frame_len(buf, max_frame)? else {
        return Ok(None);
    };
    if frame_len < SIZE_PREFIX + 8 {
        return Err(FrameError::TooShort {
            size: frame_len - SIZE_PREFIX,
            what: "request",
        });
    }
    let (Some(api_key), Some(api_version), Some(correlation_id)) =
        (read_i16(buf, 4), read_i16(buf, 6), read_i32(buf, 8))
    else {
        return Ok(None);
    };
    let mut head = RequestHead {
        frame_len,
        api_key,
        api_version,
        correlation_id,
        acks: None,
    };
    if api_key == PRODUCE {
        // Only the bytes of this frame belong to it: a reader that ran past the frame end
        // would read the next request, so it is bounded by the frame, and by what arrived.
        let frame = &buf[..buf.len().min(frame_len)];
        let mut reader = Reader {
            buf: frame,
            pos: 12,
            complete: buf.len() >= frame_len,
        };
        match produce_acks(&mut reader, api_version)? {
            Some(acks) => head.acks = Some(acks),
            None if reader.pos > MAX_REQUEST_HEAD => {
                return Err(FrameError::HeadTooLong {
                    limit: MAX_REQUEST_HEAD,
                })
            }
            None => return Ok(None),
        }
    }
    Ok(Some(head))
}

/// Walks a Produce request from the client id to `acks`. `Ok(None)` means the bytes are
/// not there yet.
fn produce_acks(r: &mut Reader<'_>, version: i16) -> Result<Option<i16>, FrameError> {
    // Produce v9 switched both the request header (to v2) and the body to flexible encoding.
    let flexible = version >= 9;
    // The client id is a classic nullable string even in header v2.
    let Some(client_id_len) = r.i16()? else {
        return Ok(None);
    };
    if client_id_len > 0 && r.skip(client_id_len as usize)?.is_none() {
        return Ok(None);
    }
    if flexible && r.tagged_fields()?.is_none() {
        return Ok(None);
    }
    if version >= 3 {
        let skipped = if flexible {
            match r.uvarint()? {
                None => return Ok(None),
                Some(0) => Some(()),
                Some(n) => r.skip(n as usize - 1)?,
            }
        } else {
            match r.i16()? {
                None => return Ok(None),
                Some(n) if n > 0 => r.skip(n as usize)?,
                Some(_) => Some(()),
            }
        };
        if skipped.is_none() {
            return Ok(None);
        }
    }
    r.i16()
}

/// A cursor over the bytes of one frame that may not have fully arrived yet.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Whether `buf` holds the whole frame: running out of bytes is then malformed input,
    /// not a reason to wait.
    complete: bool,
}

impl Reader<'_> {
    fn short<T>(&self) -> Result<Option<T>, FrameError> {
        if self.complete {
            Err(FrameError::Malformed {
                reason: "header runs past the end of the frame",
            })
        } else {
            Ok(None)
        }
    }

    fn skip(&mut self, n: usize) -> Result<Option<()>, FrameError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                self.pos = end;
                Ok(Some(()))
            }
            // Keep counting past what arrived so the caller can tell a head that will never
            // fit in MAX_REQUEST_HEAD from one that is merely incomplete.
            Some(end) if !self.complete => {
                self.pos = end;
                Ok(None)
            }
            _ => self.short(),
        }
    }

    fn i16(&mut self) -> Result<Option<i16>, FrameError> {
        match read_i16(self.buf, self.pos) {
            Some(v) => {
                self.pos += 2;
                Ok(Some(v))
            }
            None => self.short(),
        }
    }

    fn uvarint(&mut self) -> Result<Option<u32>, FrameError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let Some(&byte) = self.buf.get(self.pos + i) else {
                return self.short();
            };
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(Some(value));
            }
        }
        Err(FrameError::Malformed {
            reason: "varint longer than 5 bytes",
        })
    }

    fn tagged_fields(&mut self) -> Result<Option<()>, FrameError> {
        let Some(count) = self.uvarint()? else {
            return Ok(None);
        };
        for _ in 0..count {
            if self.uvarint()?.is_none() {
                return Ok(None);
            }
            let Some(size) = self.uvarint()? else {
                return Ok(None);
            };
            if self.skip(size as usize)?.is_none() {
                return Ok(None);
            }
            if self.pos > MAX_REQUEST_HEAD {
                return Ok(None);
            }
        }
        Ok(Some(()))
    }
}

fn read_i16(buf: &[u8], at: usize) -> Option<i16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(i16::from_be_bytes([bytes[0], bytes[1]]))
}

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{
        ApiVersionsRequest, MetadataRequest, ProduceRequest, RequestHeader,
    };
    use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};

    const MAX: usize = 1 << 20;

    fn request<T: Encodable + HeaderVersion>(
        key: ApiKey,
        version: i16,
        correlation_id: i32,
        client_id: Option<&str>,
        body: &T,
    ) -> Vec<u8> {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(client_id.map(|s| StrBytes::from_string(s.to_owned())));
        let mut payload = BytesMut::new();
        header
            .encode(&mut payload, T::header_version(version))
            .unwrap();
        body.encode(&mut payload, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(payload.len() as i32);
        frame.extend_from_slice(&payload);
        frame.to_vec()
    }

    fn produce(version: i16, acks: i16, txn: Option<&str>, client_id: Option<&str>) -> Vec<u8> {
        let body = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(1500)
            .with_transactional_id(txn.map(|t| StrBytes::from_string(t.to_owned()).into()));
        request(ApiKey::Produce, version, 77, client_id, &body)
    }

    /// Every strict prefix of a frame must read as "not yet", never as an error or a head.
    fn assert_prefixes_incomplete(frame: &[u8]) {
        for cut in 0..frame.len() {
            if cut >= 12 {
                // Past the fixed part only Produce still needs more bytes.
                if let Some(head) = peek_request(&frame[..cut], MAX).unwrap() {
                    assert_ne!(head.api_key, PRODUCE, "produce head at cut {cut}");
                }
            } else {
                assert_eq!(peek_request(&frame[..cut], MAX), Ok(None), "cut {cut}");
            }
        }
    }

    #[test]
    fn produce_acks_found_at_every_version_and_every_prefix_waits() {
        for version in 3..=13 {
            for acks in [-1i16, 0, 1] {
                for (txn, client) in [
                    (None, None),
                    (Some("txn-1"), Some("client-a")),
                    (Some(""), Some("")),
                ] {
                    let frame = produce(version, acks, txn, client);
                    let head = peek_request(&frame, MAX).unwrap().unwrap();
                    assert_eq!(head.acks, Some(acks), "v{version} {txn:?} {client:?}");
                    assert_eq!(head.frame_len, frame.len());
                    assert_eq!(head.correlation_id, 77);
                    assert_eq!(head.expects_response(), acks != 0);
                    // The produce head must wait for exactly the bytes up to acks.
                    let mut first_full = None;
                    for cut in 0..frame.len() {
                        if let Some(h) = peek_request(&frame[..cut], MAX).unwrap() {
                            first_full.get_or_insert(cut);
                            assert_eq!(h, head);
                        } else {
                            assert!(first_full.is_none(), "v{version}: regressed at {cut}");
                        }
                    }
                    assert!(first_full.is_some());
                }
            }
        }
    }

    #[test]
    fn other_requests_need_only_the_fixed_header() {
        let frame = request(
            ApiKey::Metadata,
            12,
            5,
            Some("c"),
            &MetadataRequest::default(),
        );
        assert_prefixes_incomplete(&frame);
        let head = peek_request(&frame[..12], MAX).unwrap().unwrap();
        assert_eq!(
            (head.api_key, head.api_version),
            (ApiKey::Metadata as i16, 12)
        );
        assert_eq!(head.acks, None);
        assert!(head.expects_response());
        let frame = request(
            ApiKey::ApiVersions,
            3,
            1,
            None,
            &ApiVersionsRequest::default(),
        );
        assert_prefixes_incomplete(&frame);
    }

    #[test]
    fn sizes_out_of_range_are_errors() {
        assert_eq!(
            frame_len(&(-1i32).to_be_bytes(), MAX),
            Err(FrameError::NegativeSize { size: -1 })
        );
        assert_eq!(
            frame_len(&(MAX as i32 + 1).to_be_bytes(), MAX),
            Err(FrameError::TooLarge {
                size: MAX as i32 + 1,
                max: MAX
            })
        );
        assert!(matches!(
            peek_request(&0i32.to_be_bytes(), MAX),
            Err(FrameError::TooShort { size: 0, .. })
        ));
        assert!(matches!(
            peek_response(&2i32.to_be_bytes(), MAX),
            Err(FrameError::TooShort { size: 2, .. })
        ));
    }

    #[test]
    fn response_head_waits_for_correlation_id() {
        let frame = [0, 0, 0, 6, 0, 0, 0, 9, 0xAA, 0xBB];
        for cut in 0..8 {
            assert_eq!(peek_response(&frame[..cut], MAX), Ok(None));
        }
        assert_eq!(
            peek_response(&frame, MAX),
            Ok(Some(ResponseHead {
                frame_len: 10,
                correlation_id: 9
            }))
        );
    }

    #[test]
    fn truncated_produce_frame_is_malformed_not_pending() {
        // A complete frame whose transactional id claims more bytes than the frame holds.
        let mut frame = produce(7, 1, Some("abc"), None);
        let txn_len_at = 4 + 8 + 2; // size, fixed header, null client id
        frame[txn_len_at..txn_len_at + 2].copy_from_slice(&500i16.to_be_bytes());
        assert!(matches!(
            peek_request(&frame, MAX),
            Err(FrameError::Malformed { .. })
        ));
    }

    #[test]
    fn produce_head_longer_than_limit_is_refused() {
        // A flexible Produce whose header tagged fields never end within the limit.
        let mut frame = BytesMut::new();
        frame.put_i32(10_000_000);
        frame.put_i16(PRODUCE);
        frame.put_i16(9);
        frame.put_i32(1);
        frame.put_i16(-1); // null client id
        frame.put_u8(1); // one tagged field
        frame.put_u8(0); // tag 0
        frame.put_slice(&[0xff, 0xff, 0x0f]); // size 262143
        frame.resize(frame.len() + 1000, 0);
        assert_eq!(
            peek_request(&frame, 20_000_000),
            Err(FrameError::HeadTooLong {
                limit: MAX_REQUEST_HEAD
            })
        );
    }
}
