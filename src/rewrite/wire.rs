//! Kafka's primitive types read in place from a response frame, and the edits that replace
//! some of them.
//!
//! A rewrite walks a response only as far as its last field that names a broker, records an
//! edit for each address, and copies every other byte through as it was. Nothing is
//! allocated from a length the peer sent before checking that the bytes are there: an array
//! of a billion elements in a ten-byte frame is an error, not an allocation.

use bytes::{BufMut, Bytes, BytesMut};

use crate::proxy::frame::SIZE_PREFIX;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame ends inside a field at byte {at}")]
    Short { at: usize },
    #[error("{what} of {len} at byte {at} does not fit the {left} bytes left")]
    TooLong {
        what: &'static str,
        len: usize,
        at: usize,
        left: usize,
    },
    #[error("negative {what} length {len} at byte {at}")]
    Negative {
        what: &'static str,
        len: i64,
        at: usize,
    },
    #[error("varint at byte {at} runs longer than 5 bytes")]
    Varint { at: usize },
    #[error("host at byte {at} is null or not UTF-8")]
    BadHost { at: usize },
    #[error("tagged field {tag} at byte {at} does not end where its size says")]
    TaggedField { tag: u32, at: usize },
    /// The walk reached the end of the bytes at hand, not of the frame: more are coming.
    #[error("the frame's bytes end at {at} for now")]
    Incomplete { at: usize },
}

/// A field read from the frame, and where it lies, so it can be replaced once its value
/// has been acted on.
#[derive(Debug)]
pub struct Field<T> {
    start: usize,
    end: usize,
    pub value: T,
}

/// A replacement for the bytes `start..end` of the frame.
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    with: Bytes,
}

/// A cursor over a response frame (size prefix included) that collects edits. It may be
/// given only the frame's first bytes: reading past them is [`WireError::Incomplete`],
/// reading past the frame's declared end is an error.
#[derive(Debug)]
pub struct Walk<'a> {
    frame: &'a [u8],
    /// The whole frame's length, size prefix included, as its size prefix declares it.
    declared: usize,
    pos: usize,
    /// Whether the message uses the compact encodings of flexible versions.
    flexible: bool,
    edits: Vec<Edit>,
}

impl<'a> Walk<'a> {
    /// Starts after the response header: the correlation id, plus tagged fields in header v1.
    pub fn new(
        frame: &'a [u8],
        header_version: i16,
        flexible: bool,
    ) -> Result<Walk<'a>, WireError> {
        let size = frame
            .get(..SIZE_PREFIX)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(WireError::Incomplete { at: frame.len() })?;
        let declared = usize::try_from(size)
            .map(|size| SIZE_PREFIX + size)
            .map_err(|_| WireError::Short { at: 0 })?;
        let mut walk = Walk {
            frame: frame.get(..declared).unwrap_or(frame),
            declared,
            pos: SIZE_PREFIX,
            flexible,
            edits: Vec::new(),
        };
        walk.i32()?;
        if header_version >= 1 {
            walk.tags()?;
        }
        Ok(walk)
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    fn left(&self) -> usize {
        self.declared.saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let frame: &'a [u8] = self.frame;
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.declared)
            .ok_or(WireError::Short { at: self.pos })?;
        let bytes = frame
            .get(self.pos..end)
            .ok_or(WireError::Incomplete { at: frame.len() })?;
        self.pos = end;
        Ok(bytes)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), WireError> {
        self.take(n).map(|_| ())
    }

    pub fn i8(&mut self) -> Result<i8, WireError> {
        Ok(i8::from_be_bytes([self.take(1)?[0]]))
    }

    pub fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn uvarint(&mut self) -> Result<u32, WireError> {
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

    /// A length prefix: compact (unsigned varint, 0 = null, else length + 1) in flexible
    /// versions, `classic_width` bytes signed (-1 = null) otherwise. Checked against what is
    /// left, where each unit takes at least one byte.
    fn length(
        &mut self,
        what: &'static str,
        classic_width: usize,
    ) -> Result<Option<usize>, WireError> {
        let at = self.pos;
        let len: i64 = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if classic_width == 2 {
            i64::from(self.i16()?)
        } else {
            i64::from(self.i32()?)
        };
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| WireError::Negative { what, len, at })?;
        if len > self.left() {
            return Err(WireError::TooLong {
                what,
                len,
                at,
                left: self.left(),
            });
        }
        Ok(Some(len))
    }

    /// A (nullable) string, returned as its bytes.
    pub fn string(&mut self) -> Result<Option<&'a [u8]>, WireError> {
        match self.length("string", 2)? {
            Some(len) => self.take(len).map(Some),
            None => Ok(None),
        }
    }

    /// A (nullable) byte array, such as a record batch, skipped.
    pub fn skip_bytes(&mut self) -> Result<(), WireError> {
        match self.length("byte array", 4)? {
            Some(len) => self.skip(len),
            None => Ok(()),
        }
    }

    /// An array's element count (null reads as empty).
    pub fn array(&mut self) -> Result<usize, WireError> {
        Ok(self.length("array", 4)?.unwrap_or(0))
    }

    /// The tagged fields that end every structure of a flexible version, skipped.
    pub fn tags(&mut self) -> Result<(), WireError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.skip(size)?;
        }
        Ok(())
    }

    /// Tagged fields, each handed to `field` with the walk at its first byte of data; `field`
    /// reads it and says so, or says it did not (it is then skipped). A field `field` read
    /// must end exactly where its size says; one whose bytes were edited gets its size
    /// rewritten.
    pub fn tagged<E: From<WireError>>(
        &mut self,
        mut field: impl FnMut(&mut Self, u32) -> Result<bool, E>,
    ) -> Result<(), E> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.field(Self::uvarint)?;
            let start = self.pos;
            let edits_before = self.edits.len();
            if !field(self, tag)? {
                self.skip(size.value as usize)?;
                continue;
            }
            if self.pos != start + size.value as usize {
                return Err(WireError::TaggedField { tag, at: start }.into());
            }
            let delta: isize = self.edits[edits_before..]
                .iter()
                .map(|e| e.with.len() as isize - (e.end - e.start) as isize)
                .sum();
            if delta != 0 {
                let mut with = BytesMut::with_capacity(5);
                put_uvarint(&mut with, (size.value as isize + delta) as u32);
                self.edit(size.start, size.end, with.freeze());
            }
        }
        Ok(())
    }

    /// Tagged fields, only in flexible versions.
    pub fn flexible_tags(&mut self) -> Result<(), WireError> {
        if self.flexible {
            self.tags()
        } else {
            Ok(())
        }
    }

    /// Reads one field with `read`, remembering where it lies in the frame.
    fn field<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, WireError>,
    ) -> Result<Field<T>, WireError> {
        let start = self.pos;
        let value = read(self)?;
        Ok(Field {
            start,
            end: self.pos,
            value,
        })
    }

    /// A host string, with where it lies in the frame.
    pub fn host(&mut self) -> Result<Field<&'a str>, WireError> {
        let at = self.pos;
        self.field(|walk| {
            walk.string()?
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or(WireError::BadHost { at })
        })
    }

    /// A (nullable) string, with where it lies in the frame.
    pub fn string_field(&mut self) -> Result<Field<Option<&'a [u8]>>, WireError> {
        self.field(Self::string)
    }

    /// A one-byte field (int8 or boolean), with where it lies in the frame.
    pub fn byte_field(&mut self) -> Result<Field<i8>, WireError> {
        self.field(Self::i8)
    }

    /// An i32 port, with where it lies in the frame.
    pub fn port_i32(&mut self) -> Result<Field<i32>, WireError> {
        self.field(Self::i32)
    }

    /// A u16 port, with where it lies in the frame.
    pub fn port_u16(&mut self) -> Result<Field<u16>, WireError> {
        self.field(Self::u16)
    }

    /// Replaces a host read earlier, in the string encoding of this message.
    pub fn set_host<T>(&mut self, field: &Field<T>, host: &str) {
        let mut with = BytesMut::with_capacity(host.len() + 5);
        if self.flexible {
            put_uvarint(&mut with, host.len() as u32 + 1);
        } else {
            with.put_i16(host.len() as i16);
        }
        with.put_slice(host.as_bytes());
        self.edit(field.start, field.end, with.freeze());
    }

    /// Replaces a string read earlier with null, in the encoding of this message.
    pub fn set_null<T>(&mut self, field: &Field<T>) {
        let with: &'static [u8] = if self.flexible { &[0] } else { &[0xff, 0xff] };
        self.edit(field.start, field.end, Bytes::from_static(with));
    }

    /// Replaces a one-byte field read earlier.
    pub fn set_byte<T>(&mut self, field: &Field<T>, value: i8) {
        self.edit(
            field.start,
            field.end,
            Bytes::copy_from_slice(&value.to_be_bytes()),
        );
    }

    /// Replaces a port read earlier, keeping its width.
    pub fn set_port<T>(&mut self, field: &Field<T>, port: u16) {
        let with = if field.end - field.start == 2 {
            Bytes::copy_from_slice(&port.to_be_bytes())
        } else {
            Bytes::copy_from_slice(&i32::from(port).to_be_bytes())
        };
        self.edit(field.start, field.end, with);
    }

    /// Replaces the bytes `start..end` of the frame.
    pub fn edit(&mut self, start: usize, end: usize, with: Bytes) {
        self.edits.push(Edit { start, end, with });
    }

    /// The frame up to where the walk stopped, with every edit applied and the size prefix
    /// of the whole frame recomputed; the rest of the frame, from `consumed` on, follows as
    /// it came. `held` holds (at least) those bytes: without edits, they are returned
    /// themselves.
    pub fn finish(self, held: &Bytes) -> Rewritten {
        let consumed = self.pos;
        if self.edits.is_empty() {
            return Rewritten {
                out: held.slice(..consumed),
                consumed,
                edited: false,
            };
        }
        let mut edits = self.edits;
        edits.sort_by_key(|e| e.start);
        let grown: usize = edits.iter().map(|e| e.with.len()).sum();
        let removed: usize = edits.iter().map(|e| e.end - e.start).sum();
        let mut out = BytesMut::with_capacity(consumed + grown);
        // The new size of the whole frame; the walk already checked it fits an i32 before.
        let size = (self.declared + grown - removed - SIZE_PREFIX) as i32;
        out.put_i32(size);
        let mut copied = SIZE_PREFIX;
        for edit in &edits {
            out.put_slice(&self.frame[copied..edit.start]);
            out.put_slice(&edit.with);
            copied = edit.end;
        }
        out.put_slice(&self.frame[copied..consumed]);
        Rewritten {
            out: out.freeze(),
            consumed,
            edited: true,
        }
    }
}

/// The rewritten beginning of a frame: what goes out instead of its first `consumed` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub out: Bytes,
    pub consumed: usize,
    /// Whether `out` differs from the bytes it replaces.
    pub edited: bool,
}

impl Rewritten {
    /// The whole rewritten frame, given the whole original one.
    pub fn whole(self, frame: &Bytes) -> Bytes {
        if !self.edited {
            return frame.clone();
        }
        if self.consumed == frame.len() {
            return self.out;
        }
        let mut whole = BytesMut::with_capacity(self.out.len() + frame.len() - self.consumed);
        whole.put_slice(&self.out);
        whole.put_slice(&frame[self.consumed..]);
        whole.freeze()
    }
}

pub fn put_uvarint(out: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Bytes {
        let mut f = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&7i32.to_be_bytes());
        f.extend_from_slice(body);
        Bytes::from(f)
    }

    #[test]
    fn huge_counts_are_errors_not_allocations() {
        let f = frame(&[0x7f, 0xff, 0xff, 0xff, 1, 2]);
        let mut walk = Walk::new(&f, 0, false).unwrap();
        assert!(matches!(
            walk.array(),
            Err(WireError::TooLong {
                len: 2147483647,
                ..
            })
        ));
        let f = frame(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut walk = Walk::new(&f, 0, true).unwrap();
        assert!(matches!(walk.array(), Err(WireError::TooLong { .. })));
        let f = frame(&[0xff, 0xfe]);
        let mut walk = Walk::new(&f, 0, false).unwrap();
        assert!(matches!(
            walk.string(),
            Err(WireError::Negative { len: -2, .. })
        ));
        let f = frame(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        let mut walk = Walk::new(&f, 0, true).unwrap();
        assert!(matches!(walk.array(), Err(WireError::Varint { .. })));
    }

    #[test]
    fn edits_splice_and_resize() {
        // classic string "ab", i32 port 9092, trailing byte 0xEE
        let f = frame(&[0, 2, b'a', b'b', 0, 0, 0x23, 0x84, 0xee]);
        let mut walk = Walk::new(&f, 0, false).unwrap();
        let host = walk.host().unwrap();
        let port = walk.port_i32().unwrap();
        assert_eq!((host.value, port.value), ("ab", 9092));
        walk.set_port(&port, 19001);
        walk.set_host(&host, "gateway");
        let out = walk.finish(&f).whole(&f);
        let mut want = 7i32.to_be_bytes().to_vec();
        want.extend_from_slice(&[0, 7]);
        want.extend_from_slice(b"gateway");
        want.extend_from_slice(&19001i32.to_be_bytes());
        want.push(0xee);
        assert_eq!(&out[4..], &want[..]);
        assert_eq!(
            i32::from_be_bytes(out[..4].try_into().unwrap()) as usize,
            want.len()
        );
    }

    #[test]
    fn no_edits_returns_the_same_bytes() {
        let f = frame(&[1, 2, 3]);
        let walk = Walk::new(&f, 0, false).unwrap();
        assert_eq!(walk.finish(&f).whole(&f).as_ptr(), f.as_ptr());
    }

    #[test]
    fn varints_round_trip() {
        for value in [0u32, 1, 127, 128, 300, 16_384, u32::MAX] {
            let mut out = BytesMut::new();
            put_uvarint(&mut out, value);
            let f = frame(&out);
            let mut walk = Walk::new(&f, 0, true).unwrap();
            assert_eq!(walk.uvarint().unwrap(), value);
        }
    }
}
