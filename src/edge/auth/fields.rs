//! Finds the values at given paths (`Topics[].Name`, `GroupId`, `CoordinatorKeys[]`) in a
//! request or response frame, by the message's [`schema`](crate::edge::auth::schema), as
//! slices borrowed from the frame.
//!
//! Requests are hostile input, and decoders that allocate from the counts a peer sends abort
//! the process on a ten-byte frame claiming two billion elements. This walker never does:
//! every length and count is checked against the bytes left before it is acted on, record
//! sets and byte fields are skipped by their length without being copied, and the only
//! allocation is the list of values found, capped by the caller's `limit`.

use std::ops::Range;

use crate::edge::auth::schema::{self, Field, Message, Type};
use crate::proxy::frame::SIZE_PREFIX;

/// How many arrays deep a path may reach (`Groups[].Topics[].PartitionIndexes[]` is 3).
pub const MAX_DEPTH: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The bytes at hand end before the frame does: more are coming.
    #[error("the frame's bytes end at {at} for now")]
    Incomplete { at: usize },
    #[error("frame ends inside a field at byte {at}")]
    Short { at: usize },
    #[error("{what} of {len} at byte {at} does not fit the {left} bytes left")]
    TooLong {
        what: &'static str,
        len: u64,
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
    #[error("{field} at byte {at} is null, which version {version} does not allow")]
    NotNullable {
        field: &'static str,
        version: i16,
        at: usize,
    },
    #[error("{field} at byte {at} is not UTF-8")]
    NotUtf8 { field: &'static str, at: usize },
    #[error("tagged field {tag} at byte {at} does not end where its size says")]
    TaggedField { tag: u32, at: usize },
    #[error("frame size prefix {size} is negative")]
    Size { size: i32 },
    #[error("api key {api_key} is not a Kafka 4.4 API")]
    UnknownApi { api_key: i16 },
    #[error("{name} has no version {version}")]
    Version { name: &'static str, version: i16 },
    #[error("more than {limit} values found")]
    TooMany { limit: usize },
    /// A path that does not name a field of the message: a mistake in a table, not input.
    #[error("{path} is not a field path of {message}")]
    Path {
        path: &'static str,
        message: &'static str,
    },
}

/// Where a value lies among the arrays around it: the element index in each.
#[derive(Debug, Clone, Copy, Default)]
pub struct Indices {
    len: u8,
    /// Slots from `len` on are stale.
    at: [u32; MAX_DEPTH],
}

impl PartialEq for Indices {
    fn eq(&self, other: &Indices) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Indices {}

impl std::hash::Hash for Indices {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl Indices {
    pub fn as_slice(&self) -> &[u32] {
        &self.at[..usize::from(self.len)]
    }

    /// Whether `self` lies inside the element `outer` names.
    pub fn within(&self, outer: &Indices) -> bool {
        self.as_slice().starts_with(outer.as_slice())
    }

    /// The first `depth` indices.
    pub fn truncated(&self, depth: usize) -> Indices {
        let mut out = *self;
        out.len = out.len.min(depth as u8);
        out
    }

    pub fn depth(&self) -> usize {
        usize::from(self.len)
    }

    pub(crate) fn push(&mut self, index: u32) {
        // Paths deeper than MAX_DEPTH are refused when planned.
        if let Some(slot) = self.at.get_mut(usize::from(self.len)) {
            *slot = index;
            self.len += 1;
        }
    }

    pub(crate) fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }
}

/// A value read from the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    /// Integers, and booleans as 0 or 1.
    Int(i64),
    Float(f64),
    Uuid([u8; 16]),
    Str(&'a str),
    /// Bytes and records, not looked into.
    Bytes(&'a [u8]),
    /// A struct, or an element of an array of structs.
    Struct,
    /// An array and its element count.
    Array(usize),
}

impl Value<'_> {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// One value at one of the paths asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<'a> {
    /// Which path, as an index into the paths asked for.
    pub path: usize,
    pub at: Indices,
    pub value: Value<'a>,
    /// The field's bytes in the frame (an element's, for `X[]` paths).
    pub span: Range<usize>,
    /// For arrays, where the elements begin (after the count); else `span.start`.
    pub head_end: usize,
}

/// A frame walked: its header, and the values found at the paths asked for, in frame order.
#[derive(Debug)]
pub struct Walked<'a> {
    pub message: &'static Message,
    pub version: i16,
    pub correlation_id: i32,
    /// Where the body begins, after the header.
    pub body: usize,
    /// Where the frame ends, as its size prefix declares it.
    pub end: usize,
    pub found: Vec<Found<'a>>,
}

impl<'a> Walked<'a> {
    /// The values found at the path of index `path`.
    pub fn at(&self, path: usize) -> impl Iterator<Item = &Found<'a>> {
        self.found.iter().filter(move |f| f.path == path)
    }
}

/// Walks a request frame (size prefix, header v1 or v2, body) whose schema is Kafka 4.4's
/// for the key and version in its header.
pub fn request<'a>(
    frame: &'a [u8],
    paths: &[&'static str],
    limit: usize,
) -> Result<Walked<'a>, FieldError> {
    let mut r = Reader::new(frame)?;
    let api_key = r.i16()?;
    let version = r.i16()?;
    let message = schema::request(api_key).ok_or(FieldError::UnknownApi { api_key })?;
    check_version(message, version)?;
    let correlation_id = r.i32()?;
    // The client id is a classic nullable string in both header versions.
    r.flexible = false;
    r.skip_length(2, true, "ClientId", version)?;
    r.flexible = message.is_flexible(version);
    if r.flexible {
        r.skip_tags()?;
    }
    walk(r, message, version, correlation_id, paths, limit)
}

/// Walks a response frame (size prefix, header v0 or v1, body) of the API and version of
/// the request it answers.
pub fn response<'a>(
    api_key: i16,
    version: i16,
    frame: &'a [u8],
    paths: &[&'static str],
    limit: usize,
) -> Result<Walked<'a>, FieldError> {
    let message = schema::response(api_key).ok_or(FieldError::UnknownApi { api_key })?;
    check_version(message, version)?;
    let mut r = Reader::new(frame)?;
    let correlation_id = r.i32()?;
    r.flexible = message.is_flexible(version);
    // ApiVersions answers keep header v0, so that any client can read them.
    if r.flexible && api_key != API_VERSIONS {
        r.skip_tags()?;
    }
    walk(r, message, version, correlation_id, paths, limit)
}

const API_VERSIONS: i16 = 18;

fn check_version(message: &'static Message, version: i16) -> Result<(), FieldError> {
    if message.versions.contains(version) {
        Ok(())
    } else {
        Err(FieldError::Version {
            name: message.name,
            version,
        })
    }
}

fn walk<'a>(
    r: Reader<'a>,
    message: &'static Message,
    version: i16,
    correlation_id: i32,
    paths: &[&'static str],
    limit: usize,
) -> Result<Walked<'a>, FieldError> {
    let plan = Plan::new(
        message.fields,
        paths.iter().enumerate().map(|(i, p)| (i, *p, *p)),
        message.name,
        0,
    )?;
    let body = r.pos;
    let mut walker = Walker {
        r,
        version,
        found: Vec::new(),
        limit,
        at: Indices::default(),
    };
    walker.fields(message.fields, &plan)?;
    // Bytes after the message are left alone, as Kafka leaves them: its readers stop at the
    // last field. librdkafka 2.16 sends three after its all-topics Metadata v12 (a field of
    // v8-10 and an empty tagged field), and brokers serve it.
    let Walker { r, found, .. } = walker;
    Ok(Walked {
        message,
        version,
        correlation_id,
        body,
        end: r.end,
        found,
    })
}

// === impl Plan ===

/// What to do with the fields of one struct: the fields some path goes through, in field
/// order. Made once per walk, from the paths; never from the input.
#[derive(Debug, Default)]
struct Plan {
    steps: Vec<Step>,
}

/// A path still to place: its index, the whole path, and what is left of it here.
type Pending = (usize, &'static str, &'static str);

/// The plan of a struct no path goes into: every field skipped.
static EMPTY: Plan = Plan { steps: Vec::new() };

#[derive(Debug)]
struct Step {
    field: usize,
    /// Paths that end at this field.
    whole: Vec<usize>,
    /// Paths that end at each element of this array field (`X[]`).
    each: Vec<usize>,
    /// Paths that go on inside this struct, or inside each element of this array.
    inner: Option<Plan>,
}

impl Plan {
    fn new(
        fields: &'static [Field],
        paths: impl Iterator<Item = Pending>,
        message: &'static str,
        depth: usize,
    ) -> Result<Plan, FieldError> {
        let mut plan = Plan::default();
        let mut inner: Vec<(usize, Vec<Pending>)> = Vec::new();
        for (index, full, rest) in paths {
            let bad = FieldError::Path {
                path: full,
                message,
            };
            let (segment, tail) = match rest.split_once('.') {
                Some((segment, tail)) => (segment, Some(tail)),
                None => (rest, None),
            };
            let (name, each) = match segment.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (segment, false),
            };
            let Some(field) = fields.iter().position(|f| f.name == name) else {
                return Err(bad);
            };
            let element = match (each, fields[field].ty) {
                (true, Type::Array(element)) => *element,
                (true, _) => return Err(bad),
                (false, ty) => ty,
            };
            let depth = depth + usize::from(each);
            if depth > MAX_DEPTH {
                return Err(bad);
            }
            let step = match plan.steps.iter().position(|s| s.field == field) {
                Some(i) => &mut plan.steps[i],
                None => {
                    plan.steps.push(Step {
                        field,
                        whole: Vec::new(),
                        each: Vec::new(),
                        inner: None,
                    });
                    let last = plan.steps.len() - 1;
                    &mut plan.steps[last]
                }
            };
            match tail {
                None if each => step.each.push(index),
                None => step.whole.push(index),
                Some(tail) => {
                    // Inside a struct, or inside each element of an array of structs; an
                    // array of structs is entered only element by element (`X[].Y`).
                    let inside_array = matches!(fields[field].ty, Type::Array(_));
                    if !matches!(element, Type::Struct(_)) || inside_array != each {
                        return Err(bad);
                    }
                    match inner.iter_mut().find(|(f, _)| *f == field) {
                        Some((_, list)) => list.push((index, full, tail)),
                        None => inner.push((field, vec![(index, full, tail)])),
                    }
                }
            }
        }
        for (field, list) in inner {
            let Type::Struct(inner_fields) = element_type(&fields[field]) else {
                continue;
            };
            let depth = depth + usize::from(matches!(fields[field].ty, Type::Array(_)));
            let sub = Plan::new(inner_fields, list.into_iter(), message, depth)?;
            if let Some(step) = plan.steps.iter_mut().find(|s| s.field == field) {
                step.inner = Some(sub);
            }
        }
        plan.steps.sort_by_key(|s| s.field);
        Ok(plan)
    }

    fn step(&self, field: usize) -> Option<&Step> {
        self.steps.iter().find(|s| s.field == field)
    }
}

/// The type of a field's elements if it is an array, else its own.
fn element_type(field: &Field) -> Type {
    match field.ty {
        Type::Array(element) => *element,
        ty => ty,
    }
}

// === impl Walker ===

struct Walker<'a> {
    r: Reader<'a>,
    version: i16,
    found: Vec<Found<'a>>,
    limit: usize,
    at: Indices,
}

impl<'a> Walker<'a> {
    /// The fields of one struct: the body's, then, in flexible versions, the tagged ones.
    fn fields(&mut self, fields: &'static [Field], plan: &Plan) -> Result<(), FieldError> {
        let flexible = self.r.flexible;
        for (i, field) in fields.iter().enumerate() {
            if !field.present(self.version) || (field.tag.is_some() && flexible) {
                continue;
            }
            self.field(field, plan.step(i))?;
        }
        if flexible {
            self.tagged(fields, plan)?;
        }
        Ok(())
    }

    fn tagged(&mut self, fields: &'static [Field], plan: &Plan) -> Result<(), FieldError> {
        let count = self.r.uvarint()?;
        for _ in 0..count {
            let tag = self.r.uvarint()?;
            let size = self.r.uvarint()? as usize;
            let start = self.r.pos;
            let known = fields
                .iter()
                .enumerate()
                .find(|(_, f)| f.tag == Some(tag) && f.present(self.version));
            let Some((i, field)) = known else {
                self.r.skip(size)?;
                continue;
            };
            let end = self.r.limit_to(size)?;
            self.field(field, plan.step(i))?;
            if self.r.pos != start + size {
                return Err(FieldError::TaggedField { tag, at: start });
            }
            self.r.end = end;
        }
        Ok(())
    }

    fn field(&mut self, field: &'static Field, step: Option<&Step>) -> Result<(), FieldError> {
        let start = self.r.pos;
        let nullable = field.nullable.contains(self.version);
        match field.ty {
            Type::Array(element) => self.array(field, element, nullable, step),
            Type::Struct(inner) => {
                if nullable && self.r.i8()? < 0 {
                    return self.emit_whole(step, Value::Null, start);
                }
                self.fields(inner, step.and_then(|s| s.inner.as_ref()).unwrap_or(&EMPTY))?;
                self.emit_whole(step, Value::Struct, start)
            }
            ty => {
                let wanted = step.is_some_and(|s| !s.whole.is_empty());
                let value = self
                    .r
                    .scalar(ty, nullable, field.name, self.version, wanted)?;
                match value {
                    Some(value) => self.emit_whole(step, value, start),
                    None => Ok(()),
                }
            }
        }
    }

    fn array(
        &mut self,
        field: &'static Field,
        element: &'static Type,
        nullable: bool,
        step: Option<&Step>,
    ) -> Result<(), FieldError> {
        let start = self.r.pos;
        let Some(count) = self.r.length(4, "array")? else {
            if !nullable {
                return Err(self.not_nullable(field.name, start));
            }
            return self.emit_whole(step, Value::Null, start);
        };
        let head_end = self.r.pos;
        if let Some(step) = step.filter(|s| !s.whole.is_empty()) {
            // The array's own span is known only at its end; its entry goes in first.
            let slot = self.found.len();
            self.emit(&step.whole, Value::Array(count), start, head_end)?;
            self.elements(field, element, count, Some(step))?;
            let end = self.r.pos;
            for found in &mut self.found[slot..slot + step.whole.len()] {
                found.span.end = end;
            }
            return Ok(());
        }
        self.elements(field, element, count, step)
    }

    fn elements(
        &mut self,
        field: &'static Field,
        element: &'static Type,
        count: usize,
        step: Option<&Step>,
    ) -> Result<(), FieldError> {
        let Some(step) = step.filter(|s| !s.each.is_empty() || s.inner.is_some()) else {
            return self.skip_elements(element, count, field.name);
        };
        for index in 0..count {
            self.at.push(index as u32);
            let start = self.r.pos;
            let slot = self.found.len();
            match element {
                Type::Struct(inner) => {
                    self.emit(&step.each, Value::Struct, start, start)?;
                    self.fields(inner, step.inner.as_ref().unwrap_or(&EMPTY))?;
                }
                ty => {
                    let wanted = !step.each.is_empty();
                    let value = self
                        .r
                        .scalar(*ty, false, field.name, self.version, wanted)?;
                    if let Some(value) = value {
                        self.emit(&step.each, value, start, start)?;
                    }
                }
            }
            let end = self.r.pos;
            for found in &mut self.found[slot..slot + step.each.len()] {
                found.span.end = end;
            }
            self.at.pop();
        }
        Ok(())
    }

    fn skip_elements(
        &mut self,
        element: &'static Type,
        count: usize,
        name: &'static str,
    ) -> Result<(), FieldError> {
        if let Some(width) = element.fixed_width() {
            // `count` is at most the bytes left, so this cannot overflow.
            return self.r.skip(count * width);
        }
        for _ in 0..count {
            match element {
                Type::Struct(inner) => self.fields(inner, &EMPTY)?,
                ty => {
                    self.r.scalar(*ty, false, name, self.version, false)?;
                }
            }
        }
        Ok(())
    }

    fn emit_whole(
        &mut self,
        step: Option<&Step>,
        value: Value<'a>,
        start: usize,
    ) -> Result<(), FieldError> {
        match step {
            Some(step) => self.emit(&step.whole, value, start, start),
            None => Ok(()),
        }
    }

    fn emit(
        &mut self,
        paths: &[usize],
        value: Value<'a>,
        start: usize,
        head_end: usize,
    ) -> Result<(), FieldError> {
        for &path in paths {
            if self.found.len() >= self.limit {
                return Err(FieldError::TooMany { limit: self.limit });
            }
            self.found.push(Found {
                path,
                at: self.at,
                value,
                span: start..self.r.pos,
                head_end,
            });
        }
        Ok(())
    }

    fn not_nullable(&self, field: &'static str, at: usize) -> FieldError {
        FieldError::NotNullable {
            field,
            version: self.version,
            at,
        }
    }
}

// === impl Reader ===

/// A bounds-checked cursor over one frame, which may have only partly arrived.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Where the frame (or the tagged field being read) ends, as declared.
    end: usize,
    /// Compact lengths and tagged fields.
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(frame: &'a [u8]) -> Result<Reader<'a>, FieldError> {
        let size = frame
            .get(..SIZE_PREFIX)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(FieldError::Incomplete { at: frame.len() })?;
        let declared = usize::try_from(size).map_err(|_| FieldError::Size { size })?;
        let end = SIZE_PREFIX + declared;
        Ok(Reader {
            buf: frame.get(..end).unwrap_or(frame),
            pos: SIZE_PREFIX,
            end,
            flexible: false,
        })
    }

    fn left(&self) -> usize {
        self.end - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FieldError> {
        let buf: &'a [u8] = self.buf;
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.end)
            .ok_or(FieldError::Short { at: self.pos })?;
        let bytes = buf
            .get(self.pos..end)
            .ok_or(FieldError::Incomplete { at: buf.len() })?;
        self.pos = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), FieldError> {
        self.take(n).map(|_| ())
    }

    /// Bounds reading to the next `n` bytes; returns the bound to restore after.
    fn limit_to(&mut self, n: usize) -> Result<usize, FieldError> {
        let at = self.pos;
        let end = at
            .checked_add(n)
            .filter(|end| *end <= self.end)
            .ok_or(FieldError::TooLong {
                what: "tagged field",
                len: n as u64,
                at,
                left: self.left(),
            })?;
        Ok(std::mem::replace(&mut self.end, end))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FieldError> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn i8(&mut self) -> Result<i8, FieldError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    fn i16(&mut self) -> Result<i16, FieldError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, FieldError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn uvarint(&mut self) -> Result<u32, FieldError> {
        let at = self.pos;
        let mut value = 0u32;
        for i in 0..5 {
            let byte = self.take(1)?[0];
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(FieldError::Varint { at })
    }

    fn skip_tags(&mut self) -> Result<(), FieldError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.skip(size)?;
        }
        Ok(())
    }

    /// A length or count: compact (unsigned varint of length + 1, 0 for null) in flexible
    /// versions, else `classic_width` bytes signed (-1 for null). `None` is null. Checked
    /// against the bytes left, where every unit takes at least one byte, so no loop or
    /// allocation can follow a count larger than the frame.
    fn length(
        &mut self,
        classic_width: usize,
        what: &'static str,
    ) -> Result<Option<usize>, FieldError> {
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
        let len = usize::try_from(len).map_err(|_| FieldError::Negative { what, len, at })?;
        if len > self.left() {
            return Err(FieldError::TooLong {
                what,
                len: len as u64,
                at,
                left: self.left(),
            });
        }
        Ok(Some(len))
    }

    /// Skips a string (`classic_width` 2) or bytes (4), refusing a null the field may not
    /// hold.
    fn skip_length(
        &mut self,
        classic_width: usize,
        nullable: bool,
        field: &'static str,
        version: i16,
    ) -> Result<(), FieldError> {
        let at = self.pos;
        match self.length(classic_width, field)? {
            Some(len) => self.skip(len),
            None if nullable => Ok(()),
            None => Err(FieldError::NotNullable { field, version, at }),
        }
    }

    /// A value of a type that is neither array nor struct; read only when `wanted`, else
    /// skipped (`None`).
    fn scalar(
        &mut self,
        ty: Type,
        nullable: bool,
        field: &'static str,
        version: i16,
        wanted: bool,
    ) -> Result<Option<Value<'a>>, FieldError> {
        let at = self.pos;
        let value = match ty {
            Type::String | Type::Bytes | Type::Records => {
                let width = if ty == Type::String { 2 } else { 4 };
                if !wanted {
                    self.skip_length(width, nullable, field, version)?;
                    return Ok(None);
                }
                match self.length(width, field)? {
                    None if nullable => Value::Null,
                    None => return Err(FieldError::NotNullable { field, version, at }),
                    Some(len) => {
                        let bytes = self.take(len)?;
                        if ty == Type::String {
                            Value::Str(
                                std::str::from_utf8(bytes)
                                    .map_err(|_| FieldError::NotUtf8 { field, at })?,
                            )
                        } else {
                            Value::Bytes(bytes)
                        }
                    }
                }
            }
            _ => {
                let width = ty.fixed_width().unwrap_or(0);
                if !wanted {
                    self.skip(width)?;
                    return Ok(None);
                }
                match ty {
                    // As Kafka reads it: any byte but 0 is true.
                    Type::Bool => Value::Int(i64::from(self.i8()? != 0)),
                    Type::Int8 => Value::Int(i64::from(self.i8()?)),
                    Type::Int16 => Value::Int(i64::from(self.i16()?)),
                    Type::Uint16 => Value::Int(i64::from(u16::from_be_bytes(self.array()?))),
                    Type::Int32 => Value::Int(i64::from(self.i32()?)),
                    Type::Uint32 => Value::Int(i64::from(u32::from_be_bytes(self.array()?))),
                    Type::Int64 => Value::Int(i64::from_be_bytes(self.array()?)),
                    Type::Float64 => Value::Float(f64::from_be_bytes(self.array()?)),
                    Type::Uuid => Value::Uuid(self.array()?),
                    _ => return Ok(None),
                }
            }
        };
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::edge::auth::schema::sample::{self, Owned, Rng};

    fn owned(value: &Value<'_>) -> Owned {
        match *value {
            Value::Null => Owned::Null,
            Value::Int(n) => Owned::Int(n),
            Value::Float(x) => Owned::Float(x),
            Value::Uuid(id) => Owned::Uuid(id),
            Value::Str(s) => Owned::Str(s.to_owned()),
            Value::Bytes(b) => Owned::Bytes(b.to_vec()),
            Value::Struct => Owned::Struct,
            Value::Array(n) => Owned::Array(n),
        }
    }

    fn paths_of(sample: &sample::Sample) -> Vec<&'static str> {
        let mut paths: Vec<&'static str> = Vec::new();
        for (path, _, _) in &sample.values {
            if !paths.contains(path) {
                paths.push(path);
            }
        }
        paths
    }

    /// Every version of every request and response, random frames with unknown tagged
    /// fields among the known ones: asked for every path, the walk finds exactly the values
    /// put in, in frame order, each with its entry.
    #[test]
    fn walks_find_every_value_put_in() {
        let mut frames = 0;
        for key in 0..95i16 {
            for request in [true, false] {
                let message = if request {
                    schema::request(key).unwrap()
                } else {
                    schema::response(key).unwrap()
                };
                let versions = message.versions;
                for version in versions.lo..=versions.hi {
                    for seed in 0..16 {
                        let mut rng = Rng::new(seed);
                        let sample = if request {
                            sample::request(message, version, &mut rng, true)
                        } else {
                            sample::response(message, version, &mut rng, true)
                        };
                        let paths = paths_of(&sample);
                        let walked = if request {
                            super::request(&sample.frame, &paths, usize::MAX)
                        } else {
                            super::response(key, version, &sample.frame, &paths, usize::MAX)
                        }
                        .unwrap_or_else(|e| panic!("{} v{version} seed {seed}: {e}", message.name));
                        let got: Vec<_> = walked
                            .found
                            .iter()
                            .map(|f| (paths[f.path], f.at.as_slice().to_vec(), owned(&f.value)))
                            .collect();
                        assert_eq!(
                            got, sample.values,
                            "{} v{version} seed {seed}",
                            message.name
                        );
                        for f in &walked.found {
                            assert!(f.span.start <= f.head_end && f.head_end <= f.span.end);
                            assert!(f.span.end <= sample.frame.len());
                        }
                        frames += 1;
                    }
                }
            }
        }
        println!("{frames} frames walked");
        assert!(frames > 9_000, "{frames}");
    }

    /// A frame that has only partly arrived is incomplete, never malformed, whatever the
    /// split point; the whole frame walks.
    #[test]
    fn every_prefix_is_incomplete() {
        for (key, version) in [
            (0, 3),
            (0, 9),
            (0, 13),
            (1, 16),
            (3, 12),
            (8, 9),
            (9, 8),
            (10, 4),
            (32, 4),
        ] {
            let message = schema::request(key).unwrap();
            let sample = sample::request(message, version, &mut Rng::new(7), true);
            let paths = paths_of(&sample);
            for cut in 0..sample.frame.len() {
                let err = super::request(&sample.frame[..cut], &paths, usize::MAX).unwrap_err();
                assert!(
                    matches!(err, FieldError::Incomplete { .. }),
                    "{key} v{version} cut {cut}: {err}"
                );
            }
            super::request(&sample.frame, &paths, usize::MAX).unwrap();
        }
    }

    /// A request frame of `key` and `version` around `body`, header v1 (client id "c").
    fn frame(key: i16, version: i16, flexible: bool, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&key.to_be_bytes());
        f.extend_from_slice(&version.to_be_bytes());
        f.extend_from_slice(&7i32.to_be_bytes());
        f.extend_from_slice(&[0, 1, b'c']);
        if flexible {
            f.push(0);
        }
        f.extend_from_slice(body);
        let mut out = (f.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&f);
        out
    }

    #[test]
    fn huge_counts_are_errors_not_allocations() {
        // Metadata v1: Topics claims 2^31-1 entries in a 6-byte body.
        let f = frame(3, 1, false, &[0x7f, 0xff, 0xff, 0xff, 0, 1]);
        let err = request(&f, &["Topics[].Name"], 10).unwrap_err();
        assert!(
            matches!(
                err,
                FieldError::TooLong {
                    len: 2147483647,
                    ..
                }
            ),
            "{err}"
        );
        // Produce v9 (flexible): a varint count of 2^32-2.
        let mut body = vec![0, 0, 1, 0, 0, 0, 0];
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let f = frame(0, 9, true, &body);
        let err = request(&f, &["TopicData[].Name"], 10).unwrap_err();
        assert!(matches!(err, FieldError::TooLong { .. }), "{err}");
        // A string claiming 30000 bytes, a skipped record set claiming 2 GB.
        let f = frame(3, 1, false, &[0, 0, 0, 1, 0x75, 0x30, b'a']);
        assert!(matches!(
            request(&f, &["Topics[].Name"], 10),
            Err(FieldError::TooLong { .. })
        ));
        let mut body = vec![
            0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0,
        ];
        body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        let f = frame(0, 3, false, &body);
        assert!(matches!(
            request(&f, &["TopicData[].Name"], 10),
            Err(FieldError::TooLong { .. })
        ));
    }

    #[test]
    fn bad_lengths_nulls_and_trailing_bytes_are_errors() {
        // A negative string length other than -1.
        let f = frame(3, 1, false, &[0, 0, 0, 1, 0xff, 0xfe]);
        assert!(matches!(
            request(&f, &["Topics[].Name"], 10),
            Err(FieldError::Negative { len: -2, .. })
        ));
        // Metadata v0: Topics is not nullable.
        let f = frame(3, 0, false, &[0xff, 0xff, 0xff, 0xff]);
        let err = request(&f, &["Topics[].Name"], 10).unwrap_err();
        assert!(
            matches!(
                err,
                FieldError::NotNullable {
                    field: "Topics",
                    version: 0,
                    ..
                }
            ),
            "{err}"
        );
        // ... but is from v1, and a null names nothing.
        let f = frame(3, 1, false, &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(request(&f, &["Topics[].Name"], 10).unwrap().found, vec![]);
        // A null topic name where names are not nullable.
        let f = frame(3, 1, false, &[0, 0, 0, 1, 0xff, 0xff]);
        assert!(matches!(
            request(&f, &["Topics[].Name"], 10),
            Err(FieldError::NotNullable { field: "Name", .. })
        ));
        // The same, walked past without reading it.
        assert!(matches!(
            request(&f, &[], 10),
            Err(FieldError::NotNullable { field: "Name", .. })
        ));
        // A byte after the message: left alone, as Kafka leaves it.
        let f = frame(3, 1, false, &[0, 0, 0, 0, 9]);
        assert_eq!(request(&f, &[], 10).unwrap().end, f.len());
        // The size prefix ends the frame before the message does: inside a fixed field
        // (Metadata v4's AllowAutoTopicCreation), or before a length's bytes.
        let mut f = frame(3, 4, false, &[0, 0, 0, 0, 1]);
        let size = i32::from_be_bytes(f[..4].try_into().unwrap()) - 1;
        f[..4].copy_from_slice(&size.to_be_bytes());
        assert!(matches!(
            request(&f, &[], 10),
            Err(FieldError::Short { .. })
        ));
        let mut f = frame(3, 1, false, &[0, 0, 0, 1, 0, 1, b't']);
        let size = i32::from_be_bytes(f[..4].try_into().unwrap()) - 1;
        f[..4].copy_from_slice(&size.to_be_bytes());
        assert!(matches!(
            request(&f, &["Topics[].Name"], 10),
            Err(FieldError::TooLong {
                len: 1,
                left: 0,
                ..
            })
        ));
        // A name that is not UTF-8, when it is read.
        let f = frame(3, 1, false, &[0, 0, 0, 1, 0, 1, 0xff]);
        assert!(matches!(
            request(&f, &["Topics[].Name"], 10),
            Err(FieldError::NotUtf8 { .. })
        ));
        // A negative size prefix, an unknown key, a version Kafka 4.4 does not have.
        assert!(matches!(
            request(&[0xff, 0, 0, 0], &[], 10),
            Err(FieldError::Size { .. })
        ));
        assert!(matches!(
            request(&frame(95, 0, false, &[]), &[], 10),
            Err(FieldError::UnknownApi { api_key: 95 })
        ));
        assert!(matches!(
            request(&frame(0, 2, false, &[]), &[], 10),
            Err(FieldError::Version { version: 2, .. })
        ));
    }

    #[test]
    fn varints_and_tagged_fields_are_bounded() {
        // Metadata v9: a header tag count of six varint bytes.
        let f = frame(3, 9, false, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
        assert!(matches!(
            request(&f, &[], 10),
            Err(FieldError::Varint { .. })
        ));
        // Fetch v12: a known tagged field (ClusterId, tag 0) whose size says 3 bytes while
        // its string takes 2.
        // ReplicaId, MaxWaitMs, MinBytes, MaxBytes, IsolationLevel, SessionId, SessionEpoch.
        let mut body = vec![0; 4 + 4 + 4 + 4 + 1 + 4 + 4];
        body.extend_from_slice(&[1, 1, 1]); // Topics, ForgottenTopicsData, RackId: empty
        body.extend_from_slice(&[1, 0, 3, 2, b'x', 9]); // one tagged field
        let f = frame(1, 12, true, &body);
        let err = request(&f, &["ClusterId"], 10).unwrap_err();
        assert!(
            matches!(err, FieldError::TaggedField { tag: 0, .. }),
            "{err}"
        );
        // The same with its size right is read.
        let last = body.len() - 1;
        body[last - 3] = 2;
        body.pop();
        let f = frame(1, 12, true, &body);
        let walked = request(&f, &["ClusterId"], 10).unwrap();
        assert_eq!(walked.found[0].value, Value::Str("x"));
    }

    #[test]
    fn values_past_the_limit_are_an_error() {
        let message = schema::request(0).unwrap();
        let index = "TopicData[].PartitionData[].Index";
        let count = |s: &sample::Sample| s.values.iter().filter(|(p, _, _)| *p == index).count();
        let sample = (0..)
            .map(|seed| sample::request(message, 9, &mut Rng::new(seed), false))
            .find(|s| count(s) >= 2)
            .unwrap();
        let n = count(&sample);
        assert_eq!(request(&sample.frame, &[index], n).unwrap().found.len(), n);
        assert_eq!(
            request(&sample.frame, &[index], n - 1).unwrap_err(),
            FieldError::TooMany { limit: n - 1 }
        );
    }

    #[test]
    fn paths_must_name_fields() {
        let message = schema::request(0).unwrap();
        let sample = sample::request(message, 9, &mut Rng::new(1), false);
        for bad in [
            "Nope",
            "TopicData.Name",
            "Acks[]",
            "TopicData[].Nope",
            "Acks.X",
            "A[].B[].C[].D[].E[]",
        ] {
            assert!(
                matches!(
                    request(&sample.frame, &[bad], 10),
                    Err(FieldError::Path { .. })
                ),
                "{bad}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any bytes after a request header: an answer or an error, never a panic, and every
        /// value found lies inside the frame.
        #[test]
        fn arbitrary_bodies_never_panic(key in 0i16..95, version in 0i16..20, flexible: bool, body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let f = frame(key, version, flexible, &body);
            let paths: &[&'static str] = &["Topics[].Name", "TopicData[].Name", "GroupId", "Topics[].TopicId", "Resources[].ResourceName"];
            // Only the paths of this message are asked for.
            let Some(message) = schema::request(key) else { return Ok(()) };
            let paths: Vec<_> = paths.iter().copied().filter(|p| message.field(p).is_some()).collect();
            if let Ok(walked) = request(&f, &paths, 100) {
                for found in walked.found {
                    prop_assert!(found.span.end <= f.len());
                }
            }
        }
    }
}
