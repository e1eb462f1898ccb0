//! What a trace file holds (SPEC §2) and how to read it, liberally.
//!
//! A file is gzip (any number of members) or plain JSON, told apart by the magic bytes, never
//! by the name. The JSON is a stream of values, each one of: an array of traces, a single
//! trace, an object holding arrays of traces, or a FunctionGraph wrapper `{"cts": {...}}`;
//! values may be concatenated or newline-delimited. Parsing borrows from the decompressed
//! buffer and skips fields ctsguard does not use, because this is the hot path.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use flate2::read::MultiGzDecoder;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One trace, borrowing its strings from the file's bytes where it can.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Trace<'a> {
    pub trace_id: Option<Cow<'a, str>>,
    pub trace_name: Option<Cow<'a, str>>,
    pub source_ip: Option<Cow<'a, str>>,
    pub time: Option<TraceTime<'a>>,
    pub service_type: Option<Cow<'a, str>>,
    pub resource_type: Option<Cow<'a, str>>,
    /// `trace_rating`, or `trace_status` as the FunctionGraph trigger names it.
    pub trace_rating: Option<Cow<'a, str>>,
    pub trace_type: Option<Cow<'a, str>>,
    pub domain_id: Option<Cow<'a, str>>,
    pub user: Option<User<'a>>,
}

/// `user` is an object in current traces and a plain string in old ones.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct User<'a> {
    pub id: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub domain_id: Option<Cow<'a, str>>,
    pub domain_name: Option<Cow<'a, str>>,
    pub user_type: Option<Cow<'a, str>>,
}

/// `time` is milliseconds since the epoch, or in old examples a string such as
/// `2016/12/08 11:07:28 GMT+08:00`.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceTime<'a> {
    Millis(i64),
    Text(Cow<'a, str>),
}

impl TraceTime<'_> {
    /// The instant, when the value can be understood.
    pub fn to_utc(&self) -> Option<DateTime<Utc>> {
        match self {
            TraceTime::Millis(ms) => Utc.timestamp_millis_opt(*ms).single(),
            TraceTime::Text(s) => parse_time_text(s.trim()),
        }
    }
}

fn parse_time_text(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(ms) = s.parse::<i64>() {
        return Utc.timestamp_millis_opt(ms).single();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // `2016/12/08 11:07:28 GMT+08:00`
    if let Some((local, offset)) = s.rsplit_once(" GMT") {
        let naive = NaiveDateTime::parse_from_str(local, "%Y/%m/%d %H:%M:%S").ok()?;
        let offset = if offset.is_empty() {
            FixedOffset::east_opt(0)?
        } else {
            offset.parse::<FixedOffset>().ok()?
        };
        return offset
            .from_local_datetime(&naive)
            .single()
            .map(|t| t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y/%m/%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Why a file, or part of it, could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("gzip: {0}")]
    Gzip(String),
    #[error("decompressed size exceeds the limit of {limit} bytes (max_decompressed_size)")]
    TooLarge { limit: u64 },
    #[error("JSON at byte {offset}: {message}")]
    Json { offset: usize, message: String },
    #[error("JSON value at byte {offset} is {what}, not a trace or a list of traces")]
    NotTraces { offset: usize, what: &'static str },
}

/// The bytes of a trace file after decompression, or an error and whatever could be
/// recovered before it (so the traces of a truncated file are still checked).
pub struct Inflated<'a> {
    pub json: Cow<'a, [u8]>,
    pub error: Option<DecodeError>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decompresses `raw` if it is gzip (every member), else returns it as it is.
pub fn inflate(raw: &[u8], limit: u64) -> Inflated<'_> {
    if !raw.starts_with(&GZIP_MAGIC) {
        if raw.len() as u64 > limit {
            return Inflated {
                json: Cow::Borrowed(&[]),
                error: Some(DecodeError::TooLarge { limit }),
            };
        }
        return Inflated {
            json: Cow::Borrowed(strip_bom(raw)),
            error: None,
        };
    }
    // Trace JSON compresses about 10:1; guessing the size saves most reallocations.
    let guess = (raw.len() as u64)
        .saturating_mul(10)
        .min(limit)
        .min(256 << 20) as usize;
    let mut out = Vec::with_capacity(guess);
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let mut reader = MultiGzDecoder::new(raw).take(limit.saturating_add(1));
    let error = match reader.read_to_end(&mut out) {
        Ok(_) if out.len() as u64 > limit => {
            out.clear();
            out.shrink_to_fit();
            Some(DecodeError::TooLarge { limit })
        }
        Ok(_) => None,
        Err(e) => Some(DecodeError::Gzip(e.to_string())),
    };
    if strip_bom(&out).len() != out.len() {
        out.drain(..3);
    }
    Inflated {
        json: Cow::Owned(out),
        error,
    }
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b)
}

/// Every trace of a decompressed file, in file order, and what could not be read.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    pub traces: Vec<Trace<'a>>,
    pub errors: Vec<DecodeError>,
}

/// Parses a stream of JSON values. After a syntax error it resumes at the next line, so one
/// bad line of a newline-delimited file costs only that line.
pub fn parse_traces(json: &[u8]) -> Parsed<'_> {
    let mut parsed = Parsed::default();
    let mut start = 0;
    while start < json.len() {
        let mut stream =
            serde_json::Deserializer::from_slice(&json[start..]).into_iter::<Document>();
        let mut failed_at = None;
        loop {
            let value_at = start + stream.byte_offset();
            let Some(item) = stream.next() else { break };
            match item {
                Ok(doc) => doc.collect_into(value_at, &mut parsed),
                Err(e) => {
                    let offset = start + stream.byte_offset();
                    parsed.errors.push(DecodeError::Json {
                        offset,
                        message: e.to_string(),
                    });
                    failed_at = Some(offset);
                    break;
                }
            }
        }
        match failed_at {
            // Skip past the line holding the error (at least one byte, so this ends).
            Some(at) => match json[at..].iter().position(|&b| b == b'\n') {
                Some(nl) => start = at + nl + 1,
                None => break,
            },
            None => break,
        }
    }
    parsed
}

/// One top-level JSON value of a trace file.
struct Document<'a> {
    items: Vec<Item<'a>>,
    not_traces: Option<&'static str>,
}

impl<'a> Document<'a> {
    /// `offset` is where the value starts in the file, for error messages.
    fn collect_into(self, offset: usize, parsed: &mut Parsed<'a>) {
        for item in self.items {
            match item {
                Item::Trace(t) => parsed.traces.push(*t),
                Item::Junk(what) => parsed.errors.push(DecodeError::NotTraces { offset, what }),
            }
        }
        if let Some(what) = self.not_traces {
            parsed.errors.push(DecodeError::NotTraces { offset, what });
        }
    }
}

/// An element of a list of traces: a trace, or something else that is reported.
enum Item<'a> {
    Trace(Box<Trace<'a>>),
    Junk(&'static str),
}

impl<'de> de::Deserialize<'de> for Document<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Document<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a trace, a list of traces or an object holding one")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Ok(Document {
                    items: read_items(seq)?,
                    not_traces: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let obj = read_object(map)?;
                if obj.is_trace {
                    return Ok(Document {
                        items: vec![Item::Trace(Box::new(obj.trace))],
                        not_traces: None,
                    });
                }
                if let Some(inner) = obj.wrapped {
                    return Ok(Document {
                        items: vec![Item::Trace(inner)],
                        not_traces: None,
                    });
                }
                if obj.nested.is_empty() {
                    return Ok(Document {
                        items: Vec::new(),
                        not_traces: Some(
                            "an object with neither trace fields nor a list of traces",
                        ),
                    });
                }
                Ok(Document {
                    items: obj.nested,
                    not_traces: None,
                })
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(junk_doc("a string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(junk_doc("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(junk_doc("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(junk_doc("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(junk_doc("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(junk_doc("null"))
            }
        }
        d.deserialize_any(V)
    }
}

fn junk_doc(what: &'static str) -> Document<'static> {
    Document {
        items: Vec::new(),
        not_traces: Some(what),
    }
}

fn read_items<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Vec<Item<'de>>, A::Error> {
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(64));
    while let Some(item) = seq.next_element_seed(ItemSeed)? {
        items.push(item);
    }
    Ok(items)
}

struct ItemSeed;

impl<'de> DeserializeSeed<'de> for ItemSeed {
    type Value = Item<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a trace object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let obj = read_object(map)?;
                Ok(match obj.wrapped {
                    Some(inner) if !obj.is_trace => Item::Trace(inner),
                    _ => Item::Trace(Box::new(obj.trace)),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Item::Junk("a list inside a list of traces"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Item::Junk("a string in a list of traces"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Item::Junk("a boolean in a list of traces"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Item::Junk("a number in a list of traces"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Item::Junk("a number in a list of traces"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Item::Junk("a number in a list of traces"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Item::Junk("null in a list of traces"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON object read once, which may turn out to be a trace, a `{"cts": trace}` wrapper or
/// a container of trace lists: the decision is made after all keys are seen.
struct Object<'a> {
    trace: Trace<'a>,
    is_trace: bool,
    wrapped: Option<Box<Trace<'a>>>,
    nested: Vec<Item<'a>>,
}

fn read_object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Object<'de>, A::Error> {
    let mut t = Trace::default();
    let mut is_trace = false;
    let mut wrapped = None;
    let mut nested = Vec::new();
    while let Some(key) = map.next_key::<Key>()? {
        match key {
            Key::TraceId => {
                t.trace_id = map.next_value::<Text>()?.0;
                is_trace = true;
            }
            Key::TraceName => {
                t.trace_name = map.next_value::<Text>()?.0;
                is_trace = true;
            }
            Key::SourceIp => t.source_ip = map.next_value::<Text>()?.0,
            Key::Time => t.time = map.next_value::<TimeField>()?.0,
            Key::ServiceType => t.service_type = map.next_value::<Text>()?.0,
            Key::ResourceType => t.resource_type = map.next_value::<Text>()?.0,
            Key::TraceRating => t.trace_rating = map.next_value::<Text>()?.0,
            Key::TraceStatus => {
                let v = map.next_value::<Text>()?.0;
                if t.trace_rating.is_none() {
                    t.trace_rating = v;
                }
            }
            Key::TraceType => t.trace_type = map.next_value::<Text>()?.0,
            Key::DomainId => t.domain_id = map.next_value::<Text>()?.0,
            Key::User => t.user = map.next_value::<UserField>()?.0,
            Key::Cts => {
                if let Item::Trace(inner) = map.next_value_seed(ItemSeed)? {
                    wrapped = Some(inner);
                }
            }
            Key::Other => {
                // Arrays under other keys may be lists of traces (`{"traces": [...]}`);
                // anything else is skipped without being built.
                if let Some(items) = map.next_value::<MaybeList>()?.0 {
                    nested.extend(items);
                }
            }
        }
    }
    Ok(Object {
        trace: t,
        is_trace,
        wrapped,
        nested,
    })
}

/// The keys ctsguard reads; everything else is `Other`. Matching without allocating.
enum Key {
    TraceId,
    TraceName,
    SourceIp,
    Time,
    ServiceType,
    ResourceType,
    TraceRating,
    TraceStatus,
    TraceType,
    DomainId,
    User,
    Cts,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "trace_id" => Key::TraceId,
                    "trace_name" => Key::TraceName,
                    "source_ip" => Key::SourceIp,
                    "time" => Key::Time,
                    "service_type" => Key::ServiceType,
                    "resource_type" => Key::ResourceType,
                    "trace_rating" => Key::TraceRating,
                    "trace_status" => Key::TraceStatus,
                    "trace_type" => Key::TraceType,
                    "domain_id" => Key::DomainId,
                    "user" => Key::User,
                    "cts" => Key::Cts,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A scalar read as text whatever its JSON type (a number where a string was expected is
/// kept, not a reason to drop the trace); objects and arrays read as absent.
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(s))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

struct TimeField<'a>(Option<TraceTime<'a>>);

impl<'de> de::Deserialize<'de> for TimeField<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TimeField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("milliseconds or a date string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(TimeField(Some(TraceTime::Millis(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(TimeField(i64::try_from(v).ok().map(TraceTime::Millis)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(TimeField(Some(TraceTime::Millis(v as i64))))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(TimeField(Some(TraceTime::Text(Cow::Borrowed(s)))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(TimeField(Some(TraceTime::Text(Cow::Owned(s.to_owned())))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TimeField(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TimeField(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TimeField(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TimeField(None))
            }
        }
        d.deserialize_any(V)
    }
}

struct UserField<'a>(Option<User<'a>>);

impl<'de> de::Deserialize<'de> for UserField<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a user object or name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut u = User::default();
                while let Some(k) = m.next_key::<UserKey>()? {
                    match k {
                        UserKey::Id => u.id = m.next_value::<Text>()?.0,
                        UserKey::Name => u.name = m.next_value::<Text>()?.0,
                        UserKey::Type => u.user_type = m.next_value::<Text>()?.0,
                        UserKey::Domain => {
                            let dom = m.next_value::<DomainField>()?;
                            u.domain_id = dom.id;
                            u.domain_name = dom.name;
                        }
                        UserKey::Other => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(UserField(Some(u)))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(UserField(Some(User {
                    name: Some(Cow::Borrowed(s)),
                    ..User::default()
                })))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(UserField(Some(User {
                    name: Some(Cow::Owned(s.to_owned())),
                    ..User::default()
                })))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(UserField(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(UserField(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(UserField(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(UserField(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(UserField(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(UserField(None))
            }
        }
        d.deserialize_any(V)
    }
}

enum UserKey {
    Id,
    Name,
    Type,
    Domain,
    Other,
}

impl<'de> de::Deserialize<'de> for UserKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UserKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<UserKey, E> {
                Ok(match s {
                    "id" => UserKey::Id,
                    "name" => UserKey::Name,
                    "type" => UserKey::Type,
                    "domain" => UserKey::Domain,
                    _ => UserKey::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct DomainField<'a> {
    #[serde(borrow, deserialize_with = "text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "text")]
    name: Option<Cow<'a, str>>,
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(<Text as de::Deserialize>::deserialize(d)?.0)
}

/// The value of an unknown key: a list (maybe of traces) or anything else, skipped.
struct MaybeList<'a>(Option<Vec<Item<'a>>>);

impl<'de> de::Deserialize<'de> for MaybeList<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let items = read_items(seq)?;
                // Only a list whose elements are all objects counts as a list of traces;
                // a list of strings inside a trace (resource ids, say) is just data.
                let all_traces =
                    !items.is_empty() && items.iter().all(|i| matches!(i, Item::Trace(_)));
                Ok(MaybeList(all_traces.then_some(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeList(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MaybeList(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeList(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeList(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeList(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeList(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MaybeList(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn names(json: &str) -> (Vec<String>, usize) {
        let p = parse_traces(json.as_bytes());
        let n = p
            .traces
            .iter()
            .map(|t| t.trace_name.as_deref().unwrap_or("?").to_owned())
            .collect();
        (n, p.errors.len())
    }

    const A: &str = r#"{"trace_id":"1","trace_name":"login","source_ip":"1.2.3.4","time":1727654400000,"user":{"id":"u","name":"alice","domain":{"id":"d","name":"acme"}},"request":{"x":[1,2]}}"#;
    const B: &str = r#"{"trace_id":"2","trace_name":"logout","source_ip":null,"time":"2016/12/08 11:07:28 GMT+08:00","user":"bob"}"#;

    #[test]
    fn every_json_shape() {
        let two = vec!["login".to_owned(), "logout".to_owned()];
        assert_eq!(names(&format!("[{A},{B}]")), (two.clone(), 0));
        assert_eq!(names(A), (vec!["login".to_owned()], 0));
        assert_eq!(
            names(&format!(r#"{{"traces":[{A},{B}],"count":2}}"#)),
            (two.clone(), 0)
        );
        assert_eq!(names(&format!("{A}\n{B}\n")), (two.clone(), 0));
        assert_eq!(names(&format!("{A}{B}")), (two.clone(), 0));
        assert_eq!(
            names(&format!(r#"{{"cts":{B}}}"#)),
            (vec!["logout".to_owned()], 0)
        );
        assert_eq!(names(""), (vec![], 0));
    }

    #[test]
    fn fields_of_both_generations() {
        let json = format!("[{A},{B}]");
        let p = parse_traces(json.as_bytes());
        let (a, b) = (&p.traces[0], &p.traces[1]);
        let u = a.user.as_ref().unwrap();
        assert_eq!(u.name.as_deref(), Some("alice"));
        assert_eq!(u.domain_name.as_deref(), Some("acme"));
        assert_eq!(
            a.time.as_ref().unwrap().to_utc().unwrap().to_rfc3339(),
            "2024-09-30T00:00:00+00:00"
        );
        assert_eq!(b.user.as_ref().unwrap().name.as_deref(), Some("bob"));
        assert_eq!(b.source_ip, None);
        assert_eq!(
            b.time.as_ref().unwrap().to_utc().unwrap().to_rfc3339(),
            "2016-12-08T03:07:28+00:00"
        );
        // Borrowed, not copied, when there is nothing to unescape.
        assert!(matches!(a.trace_name, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn odd_types_do_not_lose_the_trace() {
        let (n, errs) = names(
            r#"[{"trace_name":"login","source_ip":12345,"time":{"x":1},"user":[1],"trace_status":"warning"}]"#,
        );
        assert_eq!((n, errs), (vec!["login".to_owned()], 0));
        let p = parse_traces(br#"{"cts":{"trace_name":"login","trace_status":"incident"}}"#);
        assert_eq!(p.traces[0].trace_rating.as_deref(), Some("incident"));
    }

    #[test]
    fn bad_lines_are_reported_and_the_rest_is_read() {
        let (n, errs) = names(&format!("{A}\n{{broken\n{B}\n"));
        assert_eq!(n, vec!["login".to_owned(), "logout".to_owned()]);
        assert_eq!(errs, 1);
        let p = parse_traces(b"[1, \"x\"]\n42");
        assert_eq!(p.traces.len(), 0);
        assert_eq!(p.errors.len(), 3);
        let p = parse_traces(br#"{"unrelated": true}"#);
        assert!(matches!(p.errors[0], DecodeError::NotTraces { .. }));
    }

    #[test]
    fn gzip_members_plain_json_and_limits() {
        let mut two = gz(format!("[{A}]").as_bytes());
        two.extend(gz(format!("[{B}]").as_bytes()));
        let inf = inflate(&two, 1 << 20);
        assert!(inf.error.is_none());
        assert_eq!(parse_traces(&inf.json).traces.len(), 2);

        let plain = inflate(A.as_bytes(), 1 << 20);
        assert!(matches!(plain.json, Cow::Borrowed(_)));

        let big = gz(&vec![b' '; 10_000]);
        assert_eq!(
            inflate(&big, 9_999).error,
            Some(DecodeError::TooLarge { limit: 9_999 })
        );
        assert!(inflate(&big, 10_000).error.is_none());
        assert!(inflate(A.as_bytes(), 10).error.is_some());
    }

    #[test]
    fn truncated_and_corrupt_gzip() {
        let full = gz(format!("{A}\n{B}\n").repeat(50).as_bytes());
        let cut = inflate(&full[..full.len() / 2], 1 << 20);
        assert!(
            matches!(cut.error, Some(DecodeError::Gzip(_))),
            "{:?}",
            cut.error
        );
        let mut bad = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        bad.extend_from_slice(b"garbage garbage garbage");
        assert!(matches!(
            inflate(&bad, 1 << 20).error,
            Some(DecodeError::Gzip(_))
        ));
    }

    #[test]
    fn time_texts() {
        let t = |s: &str| {
            TraceTime::Text(Cow::Borrowed(s))
                .to_utc()
                .map(|t| t.to_rfc3339())
        };
        assert_eq!(
            t("2026-09-30T10:00:00Z").as_deref(),
            Some("2026-09-30T10:00:00+00:00")
        );
        assert_eq!(
            t("1727654400000").as_deref(),
            Some("2024-09-30T00:00:00+00:00")
        );
        assert_eq!(
            t("2016/12/08 11:07:28 GMT"),
            Some("2016-12-08T11:07:28+00:00".into())
        );
        assert_eq!(t("yesterday"), None);
    }
}
