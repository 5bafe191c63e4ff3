//! Test support: random frames of any request or response at any version, valid by the
//! schema, with every value put in recorded by path and entry, so a walk can be compared
//! with what is really there, and kafka-protocol's decoders can say whether the schema lays
//! the bytes out as they do.

use std::collections::HashSet;
use std::sync::Mutex;

use bytes::{BufMut, BytesMut};

use super::{Field, Message, Type};
use crate::rewrite::wire::put_uvarint;

/// A small deterministic generator (xorshift64*), so failures replay from their seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// A value as recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    Null,
    Int(i64),
    Float(f64),
    Uuid([u8; 16]),
    Str(String),
    Bytes(Vec<u8>),
    Struct,
    Array(usize),
}

/// A frame and what it holds: (path, entry, value) for every field and array element.
pub struct Sample {
    pub frame: Vec<u8>,
    pub values: Vec<(&'static str, Vec<u32>, Owned)>,
}

/// Paths as the walker takes them (`&'static str`): interned once each.
pub fn intern(path: &str) -> &'static str {
    static PATHS: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    let paths = paths.get_or_insert_with(HashSet::new);
    if let Some(p) = paths.get(path) {
        return p;
    }
    let leaked: &'static str = Box::leak(path.to_owned().into_boxed_str());
    paths.insert(leaked);
    leaked
}

struct Gen<'r> {
    rng: &'r mut Rng,
    version: i16,
    flexible: bool,
    /// Known tagged fields only, each unlike its default, so that kafka-protocol (which
    /// leaves out tagged fields at their default) writes the same bytes back.
    unknown_tags: bool,
    values: Vec<(&'static str, Vec<u32>, Owned)>,
    at: Vec<u32>,
}

/// A request frame: header v1 (v2 when flexible), then the body.
pub fn request(
    message: &'static Message,
    version: i16,
    rng: &mut Rng,
    unknown_tags: bool,
) -> Sample {
    let mut out = BytesMut::new();
    out.put_i32(0);
    out.put_i16(message.api_key);
    out.put_i16(version);
    out.put_i32(rng.next() as i32);
    let flexible = message.is_flexible(version);
    if rng.one_in(4) {
        out.put_i16(-1);
    } else {
        let id = format!("client-{}", rng.below(1000));
        out.put_i16(id.len() as i16);
        out.put_slice(id.as_bytes());
    }
    if flexible {
        out.put_u8(0);
    }
    body(message, version, rng, unknown_tags, out)
}

/// A response frame: header v0 (v1 when flexible, but for ApiVersions), then the body.
pub fn response(
    message: &'static Message,
    version: i16,
    rng: &mut Rng,
    unknown_tags: bool,
) -> Sample {
    let mut out = BytesMut::new();
    out.put_i32(0);
    out.put_i32(rng.next() as i32);
    if message.is_flexible(version) && message.api_key != 18 {
        out.put_u8(0);
    }
    body(message, version, rng, unknown_tags, out)
}

fn body(
    message: &'static Message,
    version: i16,
    rng: &mut Rng,
    unknown_tags: bool,
    mut out: BytesMut,
) -> Sample {
    let mut gen = Gen {
        rng,
        version,
        flexible: message.is_flexible(version),
        unknown_tags,
        values: Vec::new(),
        at: Vec::new(),
    };
    gen.fields(message.fields, "", &mut out);
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Sample {
        frame: out.to_vec(),
        values: gen.values,
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

impl Gen<'_> {
    fn record(&mut self, path: &str, value: Owned) {
        self.values.push((intern(path), self.at.clone(), value));
    }

    fn fields(&mut self, fields: &'static [Field], prefix: &str, out: &mut BytesMut) {
        for field in fields {
            if field.present(self.version) && !(field.tag.is_some() && self.flexible) {
                self.field(field, prefix, false, out);
            }
        }
        if !self.flexible {
            return;
        }
        let mut tagged: Vec<(u32, BytesMut)> = Vec::new();
        let version = self.version;
        for field in fields
            .iter()
            .filter(|f| f.tag.is_some() && f.present(version))
        {
            if self.rng.one_in(2) {
                let mut data = BytesMut::new();
                self.field(field, prefix, true, &mut data);
                tagged.push((field.tag.unwrap_or_default(), data));
            }
        }
        if self.unknown_tags && self.rng.one_in(3) {
            let junk: Vec<u8> = (0..self.rng.below(6))
                .map(|_| self.rng.next() as u8)
                .collect();
            tagged.push((1000 + self.rng.below(100) as u32, BytesMut::from(&junk[..])));
        }
        put_uvarint(out, tagged.len() as u32);
        for (tag, data) in tagged {
            put_uvarint(out, tag);
            put_uvarint(out, data.len() as u32);
            out.put_slice(&data);
        }
    }

    fn field(&mut self, field: &'static Field, prefix: &str, tagged: bool, out: &mut BytesMut) {
        let path = join(prefix, field.name);
        let nullable = field.nullable.contains(self.version);
        // A tagged field at its default would be left out by kafka-protocol: never null.
        let null = nullable && !tagged && self.rng.one_in(5);
        match field.ty {
            Type::Array(element) => {
                if null {
                    self.length(None, 4, out);
                    self.record(&path, Owned::Null);
                    return;
                }
                let count = self.rng.below(3) as usize + usize::from(tagged);
                self.length(Some(count), 4, out);
                self.record(&path, Owned::Array(count));
                let each = format!("{path}[]");
                for i in 0..count {
                    self.at.push(i as u32);
                    match element {
                        Type::Struct(inner) => {
                            self.record(&each, Owned::Struct);
                            self.fields(inner, &each, out);
                        }
                        ty => {
                            let value = self.scalar(*ty, 0, false, out);
                            self.record(&each, value);
                        }
                    }
                    self.at.pop();
                }
            }
            Type::Struct(inner) => {
                if nullable {
                    if null {
                        out.put_i8(-1);
                        self.record(&path, Owned::Null);
                        return;
                    }
                    out.put_i8(1);
                }
                self.fields(inner, &path, out);
                self.record(&path, Owned::Struct);
            }
            ty => {
                let value = if null {
                    let width = if ty == Type::String { 2 } else { 4 };
                    self.length(None, width, out);
                    Owned::Null
                } else {
                    self.scalar(ty, field.default, tagged, out)
                };
                self.record(&path, value);
            }
        }
    }

    fn scalar(&mut self, ty: Type, default: i64, tagged: bool, out: &mut BytesMut) -> Owned {
        let mut int = self.rng.next() as i64;
        if tagged && ty == Type::Bool {
            int = i64::from(default == 0);
        } else if tagged && int == default {
            int = default.wrapping_add(1);
        }
        match ty {
            Type::Bool => {
                let b = int & 1;
                out.put_u8(b as u8);
                Owned::Int(b)
            }
            Type::Int8 => {
                out.put_i8(int as i8);
                Owned::Int(i64::from(int as i8))
            }
            Type::Int16 => {
                out.put_i16(int as i16);
                Owned::Int(i64::from(int as i16))
            }
            Type::Uint16 => {
                out.put_u16(int as u16);
                Owned::Int(i64::from(int as u16))
            }
            Type::Int32 => {
                out.put_i32(int as i32);
                Owned::Int(i64::from(int as i32))
            }
            Type::Uint32 => {
                out.put_u32(int as u32);
                Owned::Int(i64::from(int as u32))
            }
            Type::Int64 => {
                out.put_i64(int);
                Owned::Int(int)
            }
            Type::Float64 => {
                let x = (int % 1_000_000) as f64 / 8.0;
                out.put_f64(x);
                Owned::Float(x)
            }
            Type::Uuid => {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&self.rng.next().to_be_bytes());
                id[8..].copy_from_slice(&(self.rng.next() | 1).to_be_bytes());
                out.put_slice(&id);
                Owned::Uuid(id)
            }
            Type::String => {
                let s = self.name();
                self.length(Some(s.len()), 2, out);
                out.put_slice(s.as_bytes());
                Owned::Str(s)
            }
            _ => {
                let b: Vec<u8> = (0..self.rng.below(9))
                    .map(|_| self.rng.next() as u8)
                    .collect();
                self.length(Some(b.len()), 4, out);
                out.put_slice(&b);
                Owned::Bytes(b)
            }
        }
    }

    /// 3 to 8 characters, some of them beyond ASCII.
    fn name(&mut self) -> String {
        const CHARS: &[char] = &['a', 'b', 'c', 'x', '.', '-', '_', '7', 'é', '€', '𝄞'];
        (0..3 + self.rng.below(6))
            .map(|_| CHARS[self.rng.below(CHARS.len() as u64) as usize])
            .collect()
    }

    fn length(&mut self, len: Option<usize>, classic_width: usize, out: &mut BytesMut) {
        match (self.flexible, len, classic_width) {
            (true, None, _) => out.put_u8(0),
            (true, Some(n), _) => put_uvarint(out, n as u32 + 1),
            (false, None, 2) => out.put_i16(-1),
            (false, None, _) => out.put_i32(-1),
            (false, Some(n), 2) => out.put_i16(n as i16),
            (false, Some(n), _) => out.put_i32(n as i32),
        }
    }
}

/// A request frame as kafka-protocol encodes it: size prefix, header, body.
pub fn encoded<T: kafka_protocol::protocol::Encodable>(
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Vec<u8> {
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let header = kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test-client")));
    let mut out = BytesMut::new();
    out.put_i32(0);
    header
        .encode(&mut out, api.request_header_version(version))
        .expect("header encodes");
    body.encode(&mut out, version).expect("body encodes");
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.to_vec()
}
