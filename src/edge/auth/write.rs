//! Encodes a message, or one struct of it, by its [`schema`](crate::edge::auth::schema):
//! every field takes its spec default (as Kafka's generated code does: `-1` where the spec
//! says so, empty strings and arrays, nulls where the default is null), except the fields a
//! recipe fills: an error code, a constant, or values mirrored from another message (the
//! entries of the request a denial answers, or an entry of an answer being filtered).
//! Tagged fields are left out. Used for the answers the gateway gives in a broker's stead.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;

use crate::edge::auth::fields::{Found, Indices, Value};
use crate::edge::auth::schema::{Field, Message, Type};
use crate::proxy::frame;
use crate::rewrite::wire::put_uvarint;

/// The errors of topics: a broker answers them per topic, with the request-wide code 0.
const TOPIC_ERRORS: [i16; 2] = [
    ResponseError::TopicAuthorizationFailed.code(),
    ResponseError::UnknownTopicId.code(),
];

/// What fills one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// The error code.
    Error,
    /// The error code when it refuses the request as a whole (a group, a transactional id,
    /// the cluster), else 0: the top-level code a broker leaves at 0 when it refuses only
    /// some entries (topics: not authorized, or an unknown id), which then carry the error.
    RequestError,
    /// A constant, for numbers whose spec default is not what a broker answers with.
    Int(i64),
    /// The value at this path of the other message, in the same entry; for an array, one
    /// element per element of the array at this path (`Topics[]`).
    Mirror(&'static str),
}

/// Fills by field path (`Responses[].PartitionResponses[].ErrorCode`).
pub type Recipe = &'static [(&'static str, Fill)];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A recipe path that does not name a field: a mistake in a table, not input.
    #[error("{path} is not a field path of {message}")]
    Path {
        path: &'static str,
        message: &'static str,
    },
    /// A recipe that fills a field with a value of another type: a mistake in a table.
    #[error("{field} cannot hold {value}")]
    Mismatch { field: &'static str, value: String },
    #[error("a string of {len} bytes does not fit a classic string")]
    TooLong { len: usize },
}

/// The values another message holds, by path and entry, for [`Fill::Mirror`].
#[derive(Debug, Default)]
pub struct Mirrors<'a> {
    paths: Vec<&'static str>,
    values: HashMap<(usize, Indices), Value<'a>>,
    /// Elements of each `X[]` path, by the entry around the array.
    counts: HashMap<(usize, Indices), usize>,
}

impl<'a> Mirrors<'a> {
    /// From the values a walk found at `paths` (where `X[]` paths gave each element).
    pub fn new(paths: &[&'static str], found: &[Found<'a>]) -> Mirrors<'a> {
        let mut mirrors = Mirrors {
            paths: paths.to_vec(),
            ..Mirrors::default()
        };
        for f in found {
            mirrors.values.insert((f.path, f.at), f.value);
            if paths.get(f.path).is_some_and(|p| p.ends_with("[]")) {
                let outer = f.at.truncated(f.at.depth().saturating_sub(1));
                *mirrors.counts.entry((f.path, outer)).or_default() += 1;
            }
        }
        mirrors
    }

    fn path(&self, path: &str) -> Option<usize> {
        self.paths.iter().position(|p| *p == path)
    }

    fn value(&self, path: &str, at: &Indices) -> Option<Value<'a>> {
        let path = self.path(path)?;
        self.values.get(&(path, *at)).copied()
    }

    fn count(&self, path: &str, at: &Indices) -> usize {
        self.path(path)
            .and_then(|path| self.counts.get(&(path, *at)))
            .copied()
            .unwrap_or(0)
    }
}

/// A recipe laid over a struct: the fields it fills, and the recipes of the structs inside.
#[derive(Debug, Default)]
struct Plan {
    steps: Vec<(usize, Option<Fill>, Plan)>,
}

static EMPTY: Plan = Plan { steps: Vec::new() };

/// A fill still to place: the whole path, what is left of it here, the fill.
type Pending = (&'static str, &'static str, Fill);

impl Plan {
    fn new(
        fields: &'static [Field],
        recipe: &[Pending],
        message: &'static str,
    ) -> Result<Plan, WriteError> {
        let mut plan = Plan::default();
        let mut inner: Vec<(usize, Vec<Pending>)> = Vec::new();
        for &(full, rest, fill) in recipe {
            let bad = WriteError::Path {
                path: full,
                message,
            };
            let (segment, tail) = match rest.split_once('.') {
                Some((segment, tail)) => (segment, Some(tail)),
                None => (rest, None),
            };
            let name = segment.strip_suffix("[]").unwrap_or(segment);
            let field = fields.iter().position(|f| f.name == name).ok_or(bad)?;
            if !plan.steps.iter().any(|(f, _, _)| *f == field) {
                plan.steps.push((field, None, Plan::default()));
            }
            match tail {
                None => {
                    if let Some(step) = plan.steps.iter_mut().find(|(f, _, _)| *f == field) {
                        step.1 = Some(fill);
                    }
                }
                Some(tail) => match inner.iter_mut().find(|(f, _)| *f == field) {
                    Some((_, list)) => list.push((full, tail, fill)),
                    None => inner.push((field, vec![(full, tail, fill)])),
                },
            }
        }
        for (field, list) in inner {
            let inner_fields = match fields[field].ty {
                Type::Struct(inner) => inner,
                Type::Array(Type::Struct(inner)) => *inner,
                _ => {
                    return Err(WriteError::Path {
                        path: list.first().map_or("", |(full, _, _)| full),
                        message,
                    })
                }
            };
            let sub = Plan::new(inner_fields, &list, message)?;
            if let Some(step) = plan.steps.iter_mut().find(|(f, _, _)| *f == field) {
                step.2 = sub;
            }
        }
        Ok(plan)
    }

    fn step(&self, field: usize) -> Option<(Option<Fill>, &Plan)> {
        self.steps
            .iter()
            .find(|(f, _, _)| *f == field)
            .map(|(_, fill, plan)| (*fill, plan))
    }
}

/// Writes structs of one message at one version.
pub struct Writer<'m, 'a> {
    version: i16,
    flexible: bool,
    error: i16,
    mirrors: &'m Mirrors<'a>,
}

impl<'m, 'a> Writer<'m, 'a> {
    pub fn new(
        message: &Message,
        version: i16,
        error: i16,
        mirrors: &'m Mirrors<'a>,
    ) -> Writer<'m, 'a> {
        Writer {
            version,
            flexible: message.is_flexible(version),
            error,
            mirrors,
        }
    }

    /// A whole response frame: size prefix, header (v1 in flexible versions), the body.
    pub fn response(
        &self,
        message: &'static Message,
        correlation_id: i32,
        recipe: Recipe,
    ) -> Result<Bytes, WriteError> {
        let mut out = frame::begin(64);
        out.put_i32(correlation_id);
        if self.flexible {
            out.put_u8(0);
        }
        self.message_struct(
            message.fields,
            message.name,
            recipe,
            Indices::default(),
            &mut out,
        )?;
        Ok(frame::seal(out))
    }

    /// One struct of `fields`, as the entry at `at` (whose values the mirrors hold there).
    pub fn message_struct(
        &self,
        fields: &'static [Field],
        message: &'static str,
        recipe: &[(&'static str, Fill)],
        mut at: Indices,
        out: &mut BytesMut,
    ) -> Result<(), WriteError> {
        let recipe: Vec<_> = recipe.iter().map(|&(p, fill)| (p, p, fill)).collect();
        let plan = Plan::new(fields, &recipe, message)?;
        self.fields(fields, &plan, &mut at, out)
    }

    fn fields(
        &self,
        fields: &'static [Field],
        plan: &Plan,
        at: &mut Indices,
        out: &mut BytesMut,
    ) -> Result<(), WriteError> {
        for (i, field) in fields.iter().enumerate() {
            if !field.present(self.version) || (field.tag.is_some() && self.flexible) {
                continue;
            }
            let (fill, inner) = plan.step(i).unwrap_or((None, &EMPTY));
            self.field(field, fill, inner, at, out)?;
        }
        if self.flexible {
            out.put_u8(0);
        }
        Ok(())
    }

    fn field(
        &self,
        field: &'static Field,
        fill: Option<Fill>,
        inner: &Plan,
        at: &mut Indices,
        out: &mut BytesMut,
    ) -> Result<(), WriteError> {
        let nullable = field.nullable.contains(self.version);
        match field.ty {
            Type::Array(element) => {
                let count = match fill {
                    Some(Fill::Mirror(path)) => Some((self.mirrors.count(path, at), Some(path))),
                    Some(other) => {
                        return Err(WriteError::Mismatch {
                            field: field.name,
                            value: format!("{other:?}"),
                        })
                    }
                    None if nullable && field.null_default => None,
                    None => Some((0, None)),
                };
                let Some((count, path)) = count else {
                    self.length(None, 4, out);
                    return Ok(());
                };
                self.length(Some(count), 4, out);
                for index in 0..count {
                    at.push(index as u32);
                    match element {
                        Type::Struct(inner_fields) => self.fields(inner_fields, inner, at, out)?,
                        ty => {
                            let value = path.and_then(|p| self.mirrors.value(p, at));
                            self.scalar(field, *ty, false, value, out)?;
                        }
                    }
                    at.pop();
                }
                Ok(())
            }
            Type::Struct(inner_fields) => {
                if nullable {
                    if field.null_default && fill.is_none() && inner.steps.is_empty() {
                        out.put_i8(-1);
                        return Ok(());
                    }
                    out.put_i8(1);
                }
                self.fields(inner_fields, inner, at, out)
            }
            ty => {
                let value = match fill {
                    None => None,
                    Some(Fill::Error) => Some(Value::Int(i64::from(self.error))),
                    Some(Fill::RequestError) => {
                        Some(Value::Int(if TOPIC_ERRORS.contains(&self.error) {
                            0
                        } else {
                            i64::from(self.error)
                        }))
                    }
                    Some(Fill::Int(n)) => Some(Value::Int(n)),
                    Some(Fill::Mirror(path)) => self.mirrors.value(path, at),
                };
                self.scalar(field, ty, nullable, value, out)
            }
        }
    }

    /// A value of a type that is neither array nor struct: `value`, or the default.
    fn scalar(
        &self,
        field: &'static Field,
        ty: Type,
        nullable: bool,
        value: Option<Value<'_>>,
        out: &mut BytesMut,
    ) -> Result<(), WriteError> {
        let mismatch = |value: &Value<'_>| WriteError::Mismatch {
            field: field.name,
            value: format!("{value:?}"),
        };
        let int = match value {
            None | Some(Value::Null) => field.default,
            Some(Value::Int(n)) => n,
            Some(ref other) if ty.fixed_width().is_some() && ty != Type::Uuid => {
                return Err(mismatch(other))
            }
            Some(_) => 0,
        };
        match ty {
            Type::Bool => out.put_u8(u8::from(int != 0)),
            Type::Int8 => out.put_i8(int as i8),
            Type::Int16 => out.put_i16(int as i16),
            Type::Uint16 => out.put_u16(int as u16),
            Type::Int32 => out.put_i32(int as i32),
            Type::Uint32 => out.put_u32(int as u32),
            Type::Int64 => out.put_i64(int),
            Type::Float64 => out.put_f64(match value {
                Some(Value::Float(x)) => x,
                _ => int as f64,
            }),
            Type::Uuid => match value {
                Some(Value::Uuid(id)) => out.put_slice(&id),
                None | Some(Value::Null) => out.put_slice(&[0; 16]),
                Some(other) => return Err(mismatch(&other)),
            },
            Type::String => match value {
                Some(Value::Str(s)) => self.bytes(Some(s.as_bytes()), 2, out)?,
                None | Some(Value::Null) if nullable && (field.null_default || value.is_some()) => {
                    self.length(None, 2, out)
                }
                None | Some(Value::Null) => self.bytes(Some(b""), 2, out)?,
                Some(other) => return Err(mismatch(&other)),
            },
            Type::Bytes | Type::Records => match value {
                Some(Value::Bytes(b)) => self.bytes(Some(b), 4, out)?,
                None | Some(Value::Null) if nullable && field.null_default => {
                    self.length(None, 4, out)
                }
                None | Some(Value::Null) => self.bytes(Some(b""), 4, out)?,
                Some(other) => return Err(mismatch(&other)),
            },
            Type::Array(_) | Type::Struct(_) => return Err(mismatch(&Value::Struct)),
        }
        Ok(())
    }

    fn bytes(
        &self,
        bytes: Option<&[u8]>,
        classic_width: usize,
        out: &mut BytesMut,
    ) -> Result<(), WriteError> {
        let Some(bytes) = bytes else {
            self.length(None, classic_width, out);
            return Ok(());
        };
        let limit = if self.flexible {
            u32::MAX as usize - 1
        } else if classic_width == 2 {
            i16::MAX as usize
        } else {
            i32::MAX as usize
        };
        if bytes.len() > limit {
            return Err(WriteError::TooLong { len: bytes.len() });
        }
        self.length(Some(bytes.len()), classic_width, out);
        out.put_slice(bytes);
        Ok(())
    }

    /// A length or count (`None`: null), compact in flexible versions. Callers keep it
    /// within range: counts come from what a frame held.
    pub fn length(&self, len: Option<usize>, classic_width: usize, out: &mut BytesMut) {
        match (self.flexible, len, classic_width) {
            (true, None, _) => out.put_u8(0),
            (true, Some(n), _) => put_uvarint(out, (n as u32).saturating_add(1)),
            (false, None, 2) => out.put_i16(-1),
            (false, None, _) => out.put_i32(-1),
            (false, Some(n), 2) => out.put_i16(n as i16),
            (false, Some(n), _) => out.put_i32(n as i32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::auth::schema;

    fn write(
        key: i16,
        version: i16,
        recipe: &[(&'static str, Fill)],
    ) -> Result<BytesMut, WriteError> {
        let message = schema::response(key).unwrap();
        let mirrors = Mirrors::default();
        let writer = Writer::new(message, version, 31, &mirrors);
        let mut out = BytesMut::new();
        writer
            .message_struct(
                message.fields,
                message.name,
                recipe,
                Indices::default(),
                &mut out,
            )
            .map(|()| out)
    }

    #[test]
    fn defaults_are_the_specs() {
        // Heartbeat v0: ErrorCode only; v4 (flexible): ThrottleTimeMs, ErrorCode, tags.
        assert_eq!(
            &write(12, 0, &[("ErrorCode", Fill::Error)]).unwrap()[..],
            &[0, 31]
        );
        assert_eq!(
            &write(12, 4, &[("ErrorCode", Fill::Error)]).unwrap()[..],
            &[0, 0, 0, 0, 0, 31, 0]
        );
        // EndTxn v5: ProducerId and ProducerEpoch default to -1.
        let out = write(26, 5, &[]).unwrap();
        assert_eq!(
            &out[..],
            &[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]
        );
        // JoinGroup v7 (compact): GenerationId -1, ProtocolType null (its default),
        // ProtocolName, Leader, MemberId "" (no default), no Members.
        let out = write(11, 7, &[]).unwrap();
        assert_eq!(
            &out[..],
            &[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 1, 1, 1, 1, 0]
        );
    }

    #[test]
    fn recipes_that_do_not_fit_the_schema_are_errors() {
        assert!(matches!(
            write(12, 0, &[("Nope", Fill::Error)]),
            Err(WriteError::Path { path: "Nope", .. })
        ));
        assert!(matches!(
            write(12, 0, &[("ErrorCode.X", Fill::Error)]),
            Err(WriteError::Path { .. })
        ));
        // An error code in a string, a count from a constant.
        assert!(matches!(
            write(11, 0, &[("Leader", Fill::Error)]),
            Err(WriteError::Mismatch {
                field: "Leader",
                ..
            })
        ));
        assert!(matches!(
            write(11, 0, &[("Members", Fill::Int(3))]),
            Err(WriteError::Mismatch {
                field: "Members",
                ..
            })
        ));
    }
}
