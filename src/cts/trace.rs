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
    #[error("the object is empty (0 bytes)")]
    Empty,
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
    if raw.is_empty() {
        // CTS never writes an empty trace file: something truncated or replaced it.
        return Inflated {
            json: Cow::Borrowed(&[]),
            error: Some(DecodeError::Empty),
        };
    }
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

/// Parses a stream of JSON values. When a value is broken, the traces read before the break
/// are kept, and reading resumes at the next line that opens a new value, so one bad line of a
/// newline-delimited file costs only that line.
pub fn parse_traces(json: &[u8]) -> Parsed<'_> {
    let mut parsed = Parsed::default();
    let mut start = 0;
    while start < json.len() {
        let mut stream =
            serde_json::Deserializer::from_slice(&json[start..]).into_iter::<Document>();
        let mut resume = None;
        loop {
            let value_at = start + stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(Document(sink))) => parsed.take(sink, value_at),
                Some(Err(e)) => {
                    // Read the broken value again, keeping what comes before the break; this
                    // costs a second pass only on the error path.
                    let mut sink = Sink::default();
                    let mut de = serde_json::Deserializer::from_slice(&json[value_at..]);
                    let _ = DocSeed(&mut sink).deserialize(&mut de);
                    parsed.take(sink, value_at);
                    let error_at = start + offset_of(&json[start..], e.line(), e.column());
                    parsed.errors.push(DecodeError::Json {
                        offset: error_at,
                        message: e.to_string(),
                    });
                    resume = next_record(json, error_at.max(value_at + 1));
                    break;
                }
            }
        }
        match resume {
            Some(at) => start = at,
            None => break,
        }
    }
    parsed
}

impl<'a> Parsed<'a> {
    fn take(&mut self, sink: Sink<'a>, offset: usize) {
        self.traces.extend(sink.traces);
        self.errors.extend(
            sink.junk
                .into_iter()
                .map(|what| DecodeError::NotTraces { offset, what }),
        );
    }
}

/// Byte offset of a 1-based line and column as serde_json reports them.
fn offset_of(json: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        json.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .nth(line - 2)
            .map_or(json.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(json.len())
}

/// Start of the next line that opens a new top-level value (`{` or `[` in its first column),
/// where the next record of a newline-delimited file begins.
fn next_record(json: &[u8], from: usize) -> Option<usize> {
    let mut i = from.min(json.len());
    while let Some(nl) = json[i..].iter().position(|&b| b == b'\n') {
        let at = i + nl + 1;
        if matches!(json.get(at), Some(b'{') | Some(b'[')) {
            return Some(at);
        }
        i = at;
    }
    None
}

/// What reading values yields: traces, and the values that are not traces (reported).
#[derive(Default)]
struct Sink<'de> {
    traces: Vec<Trace<'de>>,
    junk: Vec<&'static str>,
}

impl Sink<'_> {
    fn mark(&self) -> (usize, usize) {
        (self.traces.len(), self.junk.len())
    }

    /// Forgets what was added since `mark` (lists that turned out to be plain data).
    fn rewind(&mut self, mark: (usize, usize)) {
        self.traces.truncate(mark.0);
        self.junk.truncate(mark.1);
    }
}

/// Generates the `visit_*` methods for values a visitor does not read, each calling the
/// visitor's own `other(what)` with a description of the value.
macro_rules! other_values {
    () => {
        other_values!(@scalars);
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(self.other("a string"))
        }
    };
    // Everything but strings, for visitors that read strings themselves.
    (@scalars) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(self.other("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(self.other("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(self.other("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(self.other("a number"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(self.other("null"))
        }
    };
}

/// Consumes a map or list nobody reads.
fn skip_map<'de, A: MapAccess<'de>>(mut m: A) -> Result<(), A::Error> {
    while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut s: A) -> Result<(), A::Error> {
    while s.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// One top-level JSON value of a trace file.
struct Document<'de>(Sink<'de>);

impl<'de> de::Deserialize<'de> for Document<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut sink = Sink::default();
        DocSeed(&mut sink).deserialize(d)?;
        Ok(Document(sink))
    }
}

/// Reads a top-level value into a sink, as far as it goes.
struct DocSeed<'s, 'de>(&'s mut Sink<'de>);

impl<'de> DeserializeSeed<'de> for DocSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl DocSeed<'_, '_> {
    fn other(self, what: &'static str) {
        self.0.junk.push(what);
    }
}

impl<'de> Visitor<'de> for DocSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trace, a list of traces or an object holding one")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        read_list(seq, self.0).map(|_| ())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        match read_object(map, self.0)? {
            Found::Trace(t) => self.0.traces.push(t),
            Found::Lists => {}
            Found::Nothing(_) => self
                .0
                .junk
                .push("an object with neither trace fields nor a list of traces"),
        }
        Ok(())
    }
    other_values!();
}

/// Reads a list element by element into the sink (so a break keeps what came before);
/// returns how many elements it had and how many were objects.
fn read_list<'de, A: SeqAccess<'de>>(
    mut seq: A,
    sink: &mut Sink<'de>,
) -> Result<(usize, usize), A::Error> {
    let (mut len, mut objects) = (0, 0);
    while let Some(was_object) = seq.next_element_seed(ElementSeed(sink))? {
        len += 1;
        objects += usize::from(was_object);
    }
    Ok((len, objects))
}

/// An element of a list of traces: an object is a trace; anything else is reported.
struct ElementSeed<'s, 'de>(&'s mut Sink<'de>);

impl<'de> DeserializeSeed<'de> for ElementSeed<'_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl ElementSeed<'_, '_> {
    fn other(self, what: &'static str) -> bool {
        self.0.junk.push(match what {
            "a boolean" => "a boolean in a list of traces",
            "a number" => "a number in a list of traces",
            "a string" => "a string in a list of traces",
            _ => "null in a list of traces",
        });
        false
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trace object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        match read_object(map, self.0)? {
            Found::Trace(t) | Found::Nothing(t) => self.0.traces.push(t),
            Found::Lists => {}
        }
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        skip_seq(seq)?;
        self.0.junk.push("a list inside a list of traces");
        Ok(false)
    }
    other_values!();
}

/// What a JSON object turned out to be, decided after all its keys are seen.
enum Found<'a> {
    /// A trace, or the trace of a `{"cts": ...}` wrapper.
    Trace(Trace<'a>),
    /// A container whose lists of traces went to the sink (`{"traces": [...]}`).
    Lists,
    /// Neither: no trace field, no list of objects.
    Nothing(Trace<'a>),
}

fn read_object<'de, A: MapAccess<'de>>(
    mut map: A,
    sink: &mut Sink<'de>,
) -> Result<Found<'de>, A::Error> {
    let mark = sink.mark();
    let mut t = Trace::default();
    let mut is_trace = false;
    let mut wrapped = None;
    let mut lists = false;
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
            Key::Cts => wrapped = map.next_value_seed(WrappedSeed)?,
            // Lists under other keys may hold traces (`{"traces": [...]}`); they go to the
            // sink as they are read and are taken back if this object is itself a trace.
            Key::Other => lists |= map.next_value_seed(ListSeed(sink))?,
        }
    }
    if is_trace {
        sink.rewind(mark);
        return Ok(Found::Trace(t));
    }
    if let Some(w) = wrapped {
        sink.rewind(mark);
        return Ok(Found::Trace(w));
    }
    Ok(if lists {
        Found::Lists
    } else {
        Found::Nothing(t)
    })
}

/// The value of `cts` in a FunctionGraph trigger event: the trace.
struct WrappedSeed;

impl<'de> DeserializeSeed<'de> for WrappedSeed {
    type Value = Option<Trace<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl WrappedSeed {
    fn other<T>(self, _: &'static str) -> Option<T> {
        None
    }
}

impl<'de> Visitor<'de> for WrappedSeed {
    type Value = Option<Trace<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trace object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut inner = Sink::default();
        Ok(match read_object(map, &mut inner)? {
            Found::Trace(t) | Found::Nothing(t) => Some(t),
            Found::Lists => None,
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq)?;
        Ok(None)
    }
    other_values!();
}

/// The value of an unknown key. A list that is empty or holds objects is a list of traces and
/// goes to the sink (`true`); a list of plain values (ids, tags) is data and is taken back.
struct ListSeed<'s, 'de>(&'s mut Sink<'de>);

impl<'de> DeserializeSeed<'de> for ListSeed<'_, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl ListSeed<'_, '_> {
    fn other(self, _: &'static str) -> bool {
        false
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        let mark = self.0.mark();
        let (len, objects) = read_list(seq, self.0)?;
        if len > 0 && objects == 0 {
            self.0.rewind(mark);
            return Ok(false);
        }
        Ok(true)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        skip_map(map)?;
        Ok(false)
    }
    other_values!();
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
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                skip_map(m).map(|_| Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Self::Value, A::Error> {
                skip_seq(s).map(|_| Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `time`: milliseconds (integer or float) or a date string; anything else is absent.
struct TimeField<'a>(Option<TraceTime<'a>>);

impl<'de> de::Deserialize<'de> for TimeField<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl V {
            fn other<'a>(self, _: &'static str) -> TimeField<'a> {
                TimeField(None)
            }
        }
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
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(self.other("a boolean"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(self.other("null"))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                skip_map(m).map(|_| TimeField(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Self::Value, A::Error> {
                skip_seq(s).map(|_| TimeField(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `user`: an object (current traces) or a plain name (old ones); anything else is absent.
struct UserField<'a>(Option<User<'a>>);

impl<'de> de::Deserialize<'de> for UserField<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl V {
            fn other<'a>(self, _: &'static str) -> UserField<'a> {
                UserField(None)
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = UserField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a user object or name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut u = User::default();
                while let Some(k) = m.next_key::<NameKey>()? {
                    match k {
                        NameKey::Id => u.id = m.next_value::<Text>()?.0,
                        NameKey::Name => u.name = m.next_value::<Text>()?.0,
                        NameKey::Type => u.user_type = m.next_value::<Text>()?.0,
                        NameKey::Domain => {
                            let dom = m.next_value::<UserField>()?.0.unwrap_or_default();
                            u.domain_id = dom.id;
                            u.domain_name = dom.name;
                        }
                        NameKey::Other => {
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
            other_values!(@scalars);
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Self::Value, A::Error> {
                skip_seq(s).map(|_| UserField(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Keys of `user` and of `user.domain` (which is read the same lenient way: an object with
/// `id` and `name`, or a plain name).
enum NameKey {
    Id,
    Name,
    Type,
    Domain,
    Other,
}

impl<'de> de::Deserialize<'de> for NameKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NameKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<NameKey, E> {
                Ok(match s {
                    "id" => NameKey::Id,
                    "name" => NameKey::Name,
                    "type" => NameKey::Type,
                    "domain" => NameKey::Domain,
                    _ => NameKey::Other,
                })
            }
        }
        d.deserialize_identifier(V)
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

    /// (traces, errors)
    fn counts(json: &str) -> (usize, usize) {
        let p = parse_traces(json.as_bytes());
        (p.traces.len(), p.errors.len())
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
    fn domain_of_any_shape_keeps_the_trace() {
        for dom in [
            "null",
            "\"acme\"",
            "{\"name\":\"acme\",\"id\":7}",
            "[1]",
            "true",
        ] {
            let json =
                format!(r#"[{{"trace_name":"login","user":{{"name":"a","domain":{dom}}}}}]"#);
            let p = parse_traces(json.as_bytes());
            assert_eq!((p.traces.len(), p.errors.len()), (1, 0), "domain {dom}");
        }
        let p = parse_traces(br#"{"trace_name":"login","user":{"domain":"acme"}}"#);
        assert_eq!(
            p.traces[0].user.as_ref().unwrap().domain_name.as_deref(),
            Some("acme")
        );
    }

    #[test]
    fn containers_empty_mixed_and_plain_data() {
        // An hour without traces.
        let p = parse_traces(br#"{"traces": []}"#);
        assert_eq!((p.traces.len(), p.errors.len()), (0, 0));
        // A null among traces is reported; the trace beside it is kept.
        assert_eq!(counts(&format!(r#"{{"traces":[{A}, null]}}"#)), (1, 1));
        // Lists of plain values beside the traces are data, not errors.
        assert_eq!(
            counts(&format!(r#"{{"ids":["x","y"],"traces":[{A},{B}]}}"#)),
            (2, 0)
        );
        // Lists inside a trace never become traces of their own.
        let p = parse_traces(br#"[{"trace_name":"login","resources":[{"id":1},{"id":2}]}]"#);
        assert_eq!((p.traces.len(), p.errors.len()), (1, 0));
    }

    #[test]
    fn traces_before_a_break_are_kept() {
        assert_eq!(counts(&format!("[{A},{B},{A}")), (3, 1));
        assert_eq!(counts(&format!("[{A},{B},{{\"trace_name\": tru")), (2, 1));
        // A pretty-printed file with one typo: one error, not one per following line.
        let pretty = format!("[\n  {A},\n  {{\"trace_name\": x}},\n  {B}\n]\n");
        let p = parse_traces(pretty.as_bytes());
        assert_eq!((p.traces.len(), p.errors.len()), (1, 1));
        // And a truncated gzip file still yields the traces before the cut.
        let full = gz(format!("[{}]", vec![A; 200].join(",")).as_bytes());
        let cut = inflate(&full[..full.len() * 3 / 4], 1 << 20);
        assert!(cut.error.is_some());
        let p = parse_traces(&cut.json);
        assert!(p.traces.len() > 100, "{}", p.traces.len());
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
