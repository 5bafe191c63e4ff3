//! Kafka's message schemas as data: for every API key, the request and the response, their
//! valid and flexible versions, and their fields (type, versions, nullable versions, tag,
//! default). The table ([`kafka_4_4`]) is generated from Kafka 4.4.0's message specs by
//! `scripts/gen-kafka-schema`; [`crate::edge::auth::fields`] walks requests and responses by
//! it, so no request is ever decoded by a decoder that allocates from the counts a peer sends.

#[rustfmt::skip]
mod kafka_4_4;

/// The open end of a version range (`9+`).
pub const X: i16 = i16::MAX;

/// An inclusive range of versions; [`NONE`] is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub lo: i16,
    pub hi: i16,
}

/// No version at all.
pub const NONE: Versions = Versions { lo: 1, hi: 0 };

impl Versions {
    pub const fn contains(self, version: i16) -> bool {
        self.lo <= version && version <= self.hi
    }
}

/// A field's type. Strings, bytes, records, arrays and structs may be nullable in some
/// versions ([`Field::nullable`]); array elements never are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    Uuid,
    String,
    Bytes,
    Records,
    Array(&'static Type),
    Struct(&'static [Field]),
}

impl Type {
    /// The width of a fixed-size type, whatever the version.
    pub const fn fixed_width(self) -> Option<usize> {
        match self {
            Type::Bool | Type::Int8 => Some(1),
            Type::Int16 | Type::Uint16 => Some(2),
            Type::Int32 | Type::Uint32 => Some(4),
            Type::Int64 | Type::Float64 => Some(8),
            Type::Uuid => Some(16),
            _ => None,
        }
    }
}

/// One field of a message or struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub ty: Type,
    pub versions: Versions,
    pub nullable: Versions,
    /// The tag of a field sent in the tagged-field section of flexible versions.
    pub tag: Option<u32>,
    /// The value a reader assumes when the field is absent: numbers, and booleans as 0 or 1.
    pub default: i64,
    /// Whether a string, bytes, array or struct reads as null when absent.
    pub null_default: bool,
}

impl Field {
    /// Whether the field is in the message at `version`, in the body or as a tagged field.
    pub const fn present(&self, version: i16) -> bool {
        self.versions.contains(version)
    }
}

/// One request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub name: &'static str,
    pub api_key: i16,
    pub versions: Versions,
    /// The versions with compact lengths and tagged fields (KIP-482).
    pub flexible: Versions,
    pub fields: &'static [Field],
}

impl Message {
    pub fn is_flexible(&self, version: i16) -> bool {
        self.flexible.contains(version)
    }

    /// The field at a path of field names (`Topics[].Name`, `Topology.Subtopologies[]`).
    pub fn field(&self, path: &str) -> Option<&'static Field> {
        let mut fields = self.fields;
        let mut found = None;
        for segment in path.split('.') {
            let name = segment.strip_suffix("[]").unwrap_or(segment);
            let field = fields.iter().find(|f| f.name == name)?;
            let ty = match (segment.len() != name.len(), field.ty) {
                (true, Type::Array(element)) => *element,
                (true, _) => return None,
                (false, ty) => ty,
            };
            fields = match ty {
                Type::Struct(inner) => inner,
                _ => &[],
            };
            found = Some(field);
        }
        found
    }
}

/// The request of an API key, if Kafka 4.4 defines the key.
pub fn request(api_key: i16) -> Option<&'static Message> {
    kafka_4_4::REQUESTS.get(usize::try_from(api_key).ok()?)
}

/// The response of an API key, if Kafka 4.4 defines the key.
pub fn response(api_key: i16) -> Option<&'static Message> {
    kafka_4_4::RESPONSES.get(usize::try_from(api_key).ok()?)
}

// === builders of the generated table ===

const fn v(lo: i16, hi: i16) -> Versions {
    Versions { lo, hi }
}

const fn f(name: &'static str, ty: Type, versions: Versions) -> Field {
    Field {
        name,
        ty,
        versions,
        nullable: NONE,
        tag: None,
        default: 0,
        null_default: false,
    }
}

const fn m(
    name: &'static str,
    api_key: i16,
    versions: Versions,
    flexible: Versions,
    fields: &'static [Field],
) -> Message {
    Message {
        name,
        api_key,
        versions,
        flexible,
        fields,
    }
}

impl Field {
    const fn nullable(self, nullable: Versions) -> Field {
        Field { nullable, ..self }
    }

    const fn tag(self, tag: u32) -> Field {
        Field {
            tag: Some(tag),
            ..self
        }
    }

    const fn default(self, default: i64) -> Field {
        Field { default, ..self }
    }

    const fn null_default(self) -> Field {
        Field {
            null_default: true,
            ..self
        }
    }
}

#[cfg(test)]
pub(crate) mod sample;

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::{
        ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
    };
    use kafka_protocol::protocol::Decodable;

    use super::sample::{self, Rng};
    use super::*;

    const SEEDS: u64 = 24;

    fn every_field(fields: &'static [Field], each: &mut impl FnMut(&'static Field)) {
        for field in fields {
            each(field);
            let inner = match field.ty {
                Type::Struct(inner) => inner,
                Type::Array(Type::Struct(inner)) => inner,
                _ => continue,
            };
            every_field(inner, each);
        }
    }

    #[test]
    fn every_key_has_its_request_and_response() {
        for key in 0..95i16 {
            let (req, resp) = (request(key).unwrap(), response(key).unwrap());
            assert_eq!((req.api_key, resp.api_key), (key, key));
            assert_eq!(
                req.name.strip_suffix("Request"),
                resp.name.strip_suffix("Response")
            );
            if let Ok(known) = ApiKey::try_from(key) {
                assert_eq!(format!("{known:?}Request"), req.name);
            }
        }
        assert!(request(95).is_none() && request(-1).is_none());
        assert_eq!(request(0).unwrap().versions, v(3, 13));
        assert_eq!(request(1).unwrap().flexible, v(12, X));
        assert_eq!(request(7).unwrap().versions, NONE);
    }

    /// KIP-482: tagged fields exist only in flexible versions.
    #[test]
    fn tagged_fields_are_only_in_flexible_versions() {
        for key in 0..95i16 {
            for message in [request(key).unwrap(), response(key).unwrap()] {
                every_field(message.fields, &mut |field| {
                    if field.tag.is_some() {
                        for version in message.versions.lo..=message.versions.hi {
                            assert!(
                                !field.present(version) || message.is_flexible(version),
                                "{}.{} v{version}",
                                message.name,
                                field.name
                            );
                        }
                    }
                });
            }
        }
    }

    #[test]
    fn paths_resolve_through_structs_and_arrays() {
        let produce = request(0).unwrap();
        assert_eq!(
            produce.field("TopicData[].Name").unwrap().versions,
            v(0, 12)
        );
        assert_eq!(
            produce
                .field("TopicData[].PartitionData[].Records")
                .unwrap()
                .ty,
            Type::Records
        );
        assert_eq!(produce.field("TopicData").unwrap().name, "TopicData");
        assert!(produce.field("TopicData.Name").is_none());
        assert!(produce.field("Acks[]").is_none());
        assert!(produce.field("Nope").is_none());
        let fetch = request(1).unwrap();
        let replica = fetch.field("ReplicaState.ReplicaId").unwrap();
        assert_eq!(
            (replica.default, fetch.field("ReplicaState").unwrap().tag),
            (-1, Some(1))
        );
        let metadata = request(3).unwrap();
        assert_eq!(metadata.field("AllowAutoTopicCreation").unwrap().default, 1);
        assert!(metadata.field("Topics").unwrap().nullable.contains(1));
        assert!(!metadata.field("Topics").unwrap().nullable.contains(0));
    }

    /// kafka-protocol's ApiKey claims versions some of its message types do not have.
    fn unsupported(e: &anyhow::Error) -> bool {
        format!("{e:#}").contains("specified version not supported")
    }

    /// Random frames laid out by this table, decoded and encoded again by kafka-protocol (an
    /// implementation generated from the same specs by other hands), must come back byte
    /// for byte: the table places every field where Kafka does, at every version both know.
    #[test]
    fn table_lays_out_bytes_as_kafka_protocol_does() {
        let mut checked = 0;
        for key in 0..95i16 {
            let Ok(api) = ApiKey::try_from(key) else {
                continue;
            };
            let known = api.valid_versions();
            for (kind, message) in [
                ("request", request(key).unwrap()),
                ("response", response(key).unwrap()),
            ] {
                let versions =
                    message.versions.lo.max(known.min)..=message.versions.hi.min(known.max);
                for version in versions {
                    let mut all = true;
                    for seed in 0..SEEDS {
                        let mut rng = Rng::new(seed);
                        let frame = if kind == "request" {
                            sample::request(message, version, &mut rng, false).frame
                        } else {
                            sample::response(message, version, &mut rng, false).frame
                        };
                        let mut bytes = Bytes::from(frame).split_off(4);
                        let body_start;
                        if kind == "request" {
                            let header = RequestHeader::decode(
                                &mut bytes,
                                api.request_header_version(version),
                            )
                            .unwrap_or_else(|e| panic!("{api:?} v{version} header: {e}"));
                            assert_eq!(header.request_api_version, version);
                            body_start = bytes.clone();
                            let decoded = match RequestKind::decode(api, &mut bytes, version) {
                                Err(e) if unsupported(&e) => {
                                    all = false;
                                    break;
                                }
                                decoded => decoded.unwrap_or_else(|e| {
                                    panic!("{api:?} v{version} seed {seed}: {e:#}")
                                }),
                            };
                            assert!(bytes.is_empty(), "{api:?} v{version} request: bytes left");
                            let mut again = BytesMut::new();
                            decoded.encode(&mut again, version).unwrap();
                            assert_eq!(
                                &again[..],
                                &body_start[..],
                                "{api:?} v{version} request seed {seed}"
                            );
                        } else {
                            let header_version = if api == ApiKey::ApiVersions {
                                0
                            } else {
                                api.response_header_version(version)
                            };
                            ResponseHeader::decode(&mut bytes, header_version).unwrap();
                            body_start = bytes.clone();
                            let decoded = match ResponseKind::decode(api, &mut bytes, version) {
                                Err(e) if unsupported(&e) => {
                                    all = false;
                                    break;
                                }
                                decoded => decoded.unwrap_or_else(|e| {
                                    panic!("{api:?} v{version} seed {seed}: {e:#}")
                                }),
                            };
                            assert!(bytes.is_empty(), "{api:?} v{version} response: bytes left");
                            let mut again = BytesMut::new();
                            decoded.encode(&mut again, version).unwrap();
                            assert_eq!(
                                &again[..],
                                &body_start[..],
                                "{api:?} v{version} response seed {seed}"
                            );
                        }
                    }
                    checked += usize::from(all);
                }
            }
        }
        // Every request and response version kafka-protocol 0.18 and Kafka 4.4 share.
        println!("{checked} request and response versions checked against kafka-protocol");
        assert!(checked >= 570, "{checked}");
    }
}
