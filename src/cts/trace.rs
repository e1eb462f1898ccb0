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
use std::ops::Range;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
// The bufread decoder reads the bytes in place; the read one copies them into a buffer first.
use flate2::bufread::MultiGzDecoder;
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
    if let Some(empty) = reject_empty(raw) {
        return empty;
    }
    if !raw.starts_with(&GZIP_MAGIC) {
        return plain(raw, limit);
    }
    let mut out = Vec::new();
    let (json, error) = gunzip(raw, limit, &mut out);
    out.truncate(json.end);
    out.drain(..json.start);
    Inflated {
        json: Cow::Owned(out),
        error,
    }
}

/// [`inflate`] into `out` (overwritten; its length only grows): a caller that keeps the buffer
/// between files saves the allocation, the page faults of touching fresh memory and the zeroing
/// of it for every file.
pub fn inflate_into<'a>(raw: &'a [u8], limit: u64, out: &'a mut Vec<u8>) -> Inflated<'a> {
    if let Some(empty) = reject_empty(raw) {
        return empty;
    }
    if !raw.starts_with(&GZIP_MAGIC) {
        return plain(raw, limit);
    }
    let (json, error) = gunzip(raw, limit, out);
    Inflated {
        json: Cow::Borrowed(&out[json]),
        error,
    }
}

/// CTS never writes an empty trace file: something truncated or replaced it.
fn reject_empty(raw: &[u8]) -> Option<Inflated<'static>> {
    raw.is_empty().then_some(Inflated {
        json: Cow::Borrowed(&[]),
        error: Some(DecodeError::Empty),
    })
}

fn plain(raw: &[u8], limit: u64) -> Inflated<'_> {
    if raw.len() as u64 > limit {
        return Inflated {
            json: Cow::Borrowed(&[]),
            error: Some(DecodeError::TooLarge { limit }),
        };
    }
    Inflated {
        json: Cow::Borrowed(strip_bom(raw)),
        error: None,
    }
}

/// Inflates every gzip member of `raw` into `out`; returns where the JSON lies in `out` (after
/// a byte-order mark) and what went wrong. `out`'s length is memory written before, by an
/// earlier file or zeroed when the buffer grew, and is kept, and each read gets all the room
/// left: `read_to_end` zeroed the spare capacity again for every file and read 8 KB at first,
/// zlib-rs copying into its window after every read; inflating took 13 % longer.
fn gunzip(raw: &[u8], limit: u64, out: &mut Vec<u8>) -> (Range<usize>, Option<DecodeError>) {
    // Trace JSON compresses about 10:1; guessing the size saves most reallocations.
    let guess = (raw.len() as u64).saturating_mul(10).min(256 << 20);
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let most = limit.saturating_add(1);
    let mut reader = MultiGzDecoder::new(raw);
    let mut filled = 0usize;
    let mut error = None;
    while (filled as u64) < most {
        if filled == out.len() {
            let grown = guess.max(2 * out.len() as u64).max(4096).min(most);
            out.resize(usize::try_from(grown).unwrap_or(usize::MAX), 0);
        }
        let room =
            (out.len() - filled).min(usize::try_from(most - filled as u64).unwrap_or(usize::MAX));
        match reader.read(&mut out[filled..filled + room]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(DecodeError::Gzip(e.to_string()));
                break;
            }
        }
    }
    if filled as u64 > limit {
        // A bomb must not pin its memory for the rest of the run.
        out.clear();
        out.shrink_to_fit();
        return (0..0, Some(DecodeError::TooLarge { limit }));
    }
    let start = filled - strip_bom(&out[..filled]).len();
    (start..filled, error)
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
    // Nearly every CTS file is one array of well-formed trace objects: the fast path reads
    // exactly those, and hands anything else (other shapes, escapes in the fields read,
    // damage) to the general reader below, which also does the error reporting.
    if let Some(parsed) = fast::parse(json) {
        return parsed;
    }
    parse_traces_general(json)
}

/// The general reader: every shape of SPEC §2, with error recovery. Public only so the
/// micro-benchmarks can compare it with the fast path on the same bytes.
#[doc(hidden)]
pub fn parse_traces_general(json: &[u8]) -> Parsed<'_> {
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

/// The fast path of [`parse_traces`]: a strict, hand-written reader for the common shape (one
/// top-level array of trace objects whose read fields are plain strings, integers or `null`).
///
/// Why: serde_json visits every value of every trace, building strings for fields nobody
/// reads; this reader validates the UTF-8 of the whole buffer once, then only scans the bytes
/// of the values it skips. It is all or nothing: on anything it does not handle it returns
/// `None`, and the general reader reads the file from the start, so the result (traces and
/// errors) is the general reader's by construction. An object it cannot read on its own (a
/// string field with escapes, a number where a string belongs, a wrapper, an object that is
/// not a trace) is read by the general reader's element code, and only that object.
///
/// It accepts no input that serde_json rejects: skipped strings are checked for control
/// characters and escapes (a `\u` escape of a surrogate falls back, since serde_json judges
/// those by context), numbers follow the JSON grammar (no exponents, no long digit runs:
/// those fall back), nesting deeper than serde_json's limit falls back.
mod fast {
    use std::borrow::Cow;

    use super::{ElementSeed, Parsed, Sink, Trace, TraceTime, User};
    use serde::de::{self, DeserializeSeed, Deserializer};

    /// serde_json stops at 128 levels; stay well inside it.
    const MAX_DEPTH: u32 = 100;
    /// serde_json reads long digit runs as floats and fails on infinite ones: leave those to it.
    const MAX_NUMBER_LEN: usize = 64;

    /// Bytes that end a run of plain string content: `"`, `\` and control characters.
    /// Where in the first 16 bytes of `chunk` a string stops (`"`, `\\` or a control
    /// character), with SSE2, which every x86_64 CPU has.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn stop16(chunk: &[u8]) -> Option<usize> {
        use std::arch::x86_64::*;
        let bytes: &[u8; 16] = chunk.first_chunk()?;
        // SAFETY: SSE2 is part of x86_64; the load reads the 16 bytes of `bytes`.
        let mask = unsafe {
            let v = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Unsigned v <= 0x1f: the minimum of v and 0x1f is v.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
        };
        (mask != 0).then(|| mask.trailing_zeros() as usize)
    }

    /// From `i`, whole 16-byte steps over string content: the position of the first byte
    /// that stops a string (`"`, `\\` or a control character), or where fewer than 16 bytes
    /// are left (the caller's byte loop finishes).
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(super) fn plain_run_sse2(b: &[u8], mut i: usize) -> usize {
        while let Some(chunk) = b.get(i..i + 16) {
            if let Some(stop) = stop16(chunk) {
                return i + stop;
            }
            i += 16;
        }
        i
    }

    /// The same eight bytes at a time, for CPUs other than x86_64, with the classic "some byte
    /// is zero" / "some byte < n" word tests. They can only flag bytes above a true hit
    /// (borrows run upwards), so the lowest flagged byte is the exact stop.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    #[inline]
    pub(super) fn plain_run_words(b: &[u8], mut i: usize) -> usize {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        let has_zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
        while let Some(chunk) = b.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            let stop = has_zero(w ^ (LO * u64::from(b'"')))
                | has_zero(w ^ (LO * u64::from(b'\\')))
                | (w.wrapping_sub(LO * 0x20) & !w & HI);
            if stop != 0 {
                return i + (stop.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        i
    }

    pub(super) static STOP: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 0x20 {
            t[i] = true;
            i += 1;
        }
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        t
    };

    pub(super) fn parse(json: &[u8]) -> Option<Parsed<'_>> {
        let text = std::str::from_utf8(json).ok()?;
        let mut r = Reader {
            text,
            b: json,
            i: 0,
        };
        r.ws();
        r.eat(b'[')?;
        let mut sink = Sink::default();
        r.ws();
        if r.peek()? == b']' {
            r.i += 1;
        } else {
            loop {
                r.ws();
                if r.peek()? != b'{' {
                    return None;
                }
                match r.trace() {
                    Some(t) => sink.traces.push(t),
                    None => r.general_element(&mut sink)?,
                }
                r.ws();
                match r.next()? {
                    b',' => continue,
                    b']' => break,
                    _ => return None,
                }
            }
        }
        r.ws();
        if r.i != json.len() || !sink.junk.is_empty() {
            return None;
        }
        Some(Parsed {
            traces: sink.traces,
            errors: Vec::new(),
        })
    }

    struct Reader<'a> {
        text: &'a str,
        b: &'a [u8],
        i: usize,
    }

    /// A top-level list element read by the general reader (`ElementSeed`).
    struct Element<'de>(Sink<'de>);

    impl<'de> de::Deserialize<'de> for Element<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let mut sink = Sink::default();
            ElementSeed(&mut sink).deserialize(d)?;
            Ok(Element(sink))
        }
    }

    impl<'a> Reader<'a> {
        #[inline]
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        #[inline]
        fn next(&mut self) -> Option<u8> {
            let c = self.peek()?;
            self.i += 1;
            Some(c)
        }

        #[inline]
        fn eat(&mut self, c: u8) -> Option<()> {
            (self.next()? == c).then_some(())
        }

        #[inline]
        fn ws(&mut self) {
            while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
                self.i += 1;
            }
        }

        fn literal(&mut self, word: &[u8]) -> Option<()> {
            if self.b[self.i..].starts_with(word) {
                self.i += word.len();
                Some(())
            } else {
                None
            }
        }

        /// The element at `i` (an object), read by the general reader into `sink`.
        fn general_element(&mut self, sink: &mut Sink<'a>) -> Option<()> {
            let rest = &self.b[self.i..];
            let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<Element>();
            let Element(got) = stream.next()?.ok()?;
            self.i += stream.byte_offset();
            sink.traces.extend(got.traces);
            sink.junk.extend(got.junk);
            Some(())
        }

        /// Skips string content from `i` (just after the opening quote) to the closing
        /// quote; `Some(true)` when there were escapes.
        #[inline]
        fn string_body(&mut self) -> Option<bool> {
            let mut escaped = false;
            loop {
                // Most of a trace's bytes are string content: on x86_64 sixteen bytes at a
                // time with SSE2 (every x86_64 CPU has it; the strings average 18 bytes, and
                // a wider step measured slower), elsewhere a word at a time. The byte loop
                // below covers the last bytes of the buffer, shorter than a step.
                #[cfg(target_arch = "x86_64")]
                {
                    self.i = plain_run_sse2(self.b, self.i);
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    self.i = plain_run_words(self.b, self.i);
                }
                while let Some(&c) = self.b.get(self.i) {
                    if STOP[c as usize] {
                        break;
                    }
                    self.i += 1;
                }
                match self.next()? {
                    b'"' => return Some(escaped),
                    b'\\' => {
                        escaped = true;
                        match self.next()? {
                            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                            b'u' => {
                                let hex = self.b.get(self.i..self.i + 4)?;
                                let s = std::str::from_utf8(hex).ok()?;
                                let v = u16::from_str_radix(s, 16).ok()?;
                                // `from_str_radix` takes a sign; JSON does not.
                                if !hex.iter().all(u8::is_ascii_hexdigit)
                                    || (0xD800..=0xDFFF).contains(&v)
                                {
                                    return None;
                                }
                                self.i += 4;
                            }
                            _ => return None,
                        }
                    }
                    // A control character: invalid JSON, for the general reader to report.
                    _ => return None,
                }
            }
        }

        /// A string without escapes, borrowed (the buffer is valid UTF-8 and `"` is ASCII, so
        /// the bounds are character boundaries).
        #[inline]
        fn plain_string(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.i;
            if self.string_body()? {
                return None;
            }
            self.text.get(start..self.i - 1)
        }

        /// A field read as text: a plain string or `null`; other values fall back.
        #[inline]
        fn text(&mut self) -> Option<Option<Cow<'a, str>>> {
            match self.peek()? {
                b'"' => Some(Some(Cow::Borrowed(self.plain_string()?))),
                b'n' => self.literal(b"null").map(|_| None),
                _ => None,
            }
        }

        /// `time`: a non-negative integer without leading zeros, a plain string or `null`.
        fn time(&mut self) -> Option<Option<TraceTime<'a>>> {
            match self.peek()? {
                b'"' => Some(Some(TraceTime::Text(Cow::Borrowed(self.plain_string()?)))),
                b'n' => self.literal(b"null").map(|_| None),
                b'1'..=b'9' => {
                    let start = self.i;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.i += 1;
                    }
                    if matches!(self.peek(), Some(b'.' | b'e' | b'E')) || self.i - start > 18 {
                        return None;
                    }
                    let v = self.text.get(start..self.i)?.parse::<i64>().ok()?;
                    Some(Some(TraceTime::Millis(v)))
                }
                _ => None,
            }
        }

        /// `user`: an object, a plain name or `null`.
        fn user(&mut self) -> Option<Option<User<'a>>> {
            match self.peek()? {
                b'"' => Some(Some(User {
                    name: Some(Cow::Borrowed(self.plain_string()?)),
                    ..User::default()
                })),
                b'n' => self.literal(b"null").map(|_| None),
                b'{' => {
                    let mut u = User::default();
                    self.fields(|r, key| {
                        match key {
                            "id" => u.id = r.text()?,
                            "name" => u.name = r.text()?,
                            "type" => u.user_type = r.text()?,
                            "domain" => (u.domain_id, u.domain_name) = r.domain()?,
                            _ => r.skip(1)?,
                        }
                        Some(())
                    })?;
                    Some(Some(u))
                }
                _ => None,
            }
        }

        /// `user.domain`: (id, name) of an object, a plain name, or `null`.
        #[allow(clippy::type_complexity)]
        fn domain(&mut self) -> Option<(Option<Cow<'a, str>>, Option<Cow<'a, str>>)> {
            match self.peek()? {
                b'"' => Some((None, Some(Cow::Borrowed(self.plain_string()?)))),
                b'n' => self.literal(b"null").map(|_| (None, None)),
                b'{' => {
                    let (mut id, mut name) = (None, None);
                    self.fields(|r, key| {
                        match key {
                            "id" => id = r.text()?,
                            "name" => name = r.text()?,
                            "type" => {
                                r.text()?;
                            }
                            // A domain inside the domain: rare enough for the general reader.
                            "domain" => return None,
                            _ => r.skip(2)?,
                        }
                        Some(())
                    })?;
                    Some((id, name))
                }
                _ => None,
            }
        }

        /// Reads an object's members, calling `field` with the reader at each value.
        #[inline]
        fn fields(
            &mut self,
            mut field: impl FnMut(&mut Self, &'a str) -> Option<()>,
        ) -> Option<()> {
            self.eat(b'{')?;
            self.ws();
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(());
            }
            loop {
                self.ws();
                let key = self.plain_string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                field(self, key)?;
                self.ws();
                match self.next()? {
                    b',' => {}
                    b'}' => return Some(()),
                    _ => return None,
                }
            }
        }

        /// One trace object, as `read_object` reads it; `None` (position undefined) for
        /// anything else, which the caller hands to the general reader.
        fn trace(&mut self) -> Option<Trace<'a>> {
            let start = self.i;
            let mut t = Trace::default();
            let mut is_trace = false;
            let read = self.fields(|r, key| {
                match key {
                    "trace_id" => {
                        t.trace_id = r.text()?;
                        is_trace = true;
                    }
                    "trace_name" => {
                        t.trace_name = r.text()?;
                        is_trace = true;
                    }
                    "source_ip" => t.source_ip = r.text()?,
                    "time" => t.time = r.time()?,
                    "service_type" => t.service_type = r.text()?,
                    "resource_type" => t.resource_type = r.text()?,
                    "trace_rating" => t.trace_rating = r.text()?,
                    "trace_status" => {
                        let v = r.text()?;
                        if t.trace_rating.is_none() {
                            t.trace_rating = v;
                        }
                    }
                    "trace_type" => t.trace_type = r.text()?,
                    "domain_id" => t.domain_id = r.text()?,
                    "user" => t.user = r.user()?,
                    // A wrapper: the general reader's business.
                    "cts" => return None,
                    // Lists under other keys of a trace never become traces: skip them.
                    _ => r.skip(1)?,
                }
                Some(())
            });
            if read.is_some() && is_trace {
                return Some(t);
            }
            self.i = start;
            None
        }

        /// Skips one value, checking it as strictly as serde_json does.
        fn skip(&mut self, depth: u32) -> Option<()> {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    self.string_body().map(|_| ())
                }
                b'{' => {
                    if depth > MAX_DEPTH {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    if self.peek()? == b'}' {
                        self.i += 1;
                        return Some(());
                    }
                    loop {
                        self.ws();
                        self.eat(b'"')?;
                        self.string_body()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                        self.skip(depth + 1)?;
                        self.ws();
                        match self.next()? {
                            b',' => {}
                            b'}' => return Some(()),
                            _ => return None,
                        }
                    }
                }
                b'[' => {
                    if depth > MAX_DEPTH {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    if self.peek()? == b']' {
                        self.i += 1;
                        return Some(());
                    }
                    loop {
                        self.ws();
                        self.skip(depth + 1)?;
                        self.ws();
                        match self.next()? {
                            b',' => {}
                            b']' => return Some(()),
                            _ => return None,
                        }
                    }
                }
                b't' => self.literal(b"true"),
                b'f' => self.literal(b"false"),
                b'n' => self.literal(b"null"),
                b'-' | b'0'..=b'9' => self.number(),
                _ => None,
            }
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`; exponents and long numbers fall back.
        fn number(&mut self) -> Option<()> {
            let start = self.i;
            if self.peek()? == b'-' {
                self.i += 1;
            }
            match self.next()? {
                b'0' => {}
                b'1'..=b'9' => {
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.i += 1;
                    }
                }
                _ => return None,
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
                let frac = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
                if self.i == frac {
                    return None;
                }
            }
            if matches!(self.peek(), Some(b'e' | b'E')) || self.i - start > MAX_NUMBER_LEN {
                return None;
            }
            Some(())
        }
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

    /// Both string scanners (the SSE2 one of x86_64 and the word one of other CPUs), each
    /// finished by the byte loop as `string_body` does, stop exactly where a byte-by-byte
    /// search does, from every start in buffers full of stops, bytes next to them (0x1f/0x20,
    /// 0x7f/0x80, `!`/`#` around `"`, `[`/`]` around `\`) and plain text.
    #[test]
    fn string_scanners_stop_at_the_first_stop_byte() {
        let alphabet = b"ab\"\\\x1f\x20\x01\x7f\x80\xff!#[]0";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let finish = |b: &[u8], mut j: usize| {
            while j < b.len() && !fast::STOP[b[j] as usize] {
                j += 1;
            }
            j
        };
        for round in 0..400 {
            let len = (next() % 90) as usize;
            // Mostly plain text, so runs of every length occur before a stop.
            let sparse = 1 + round % 24;
            let b: Vec<u8> = (0..len)
                .map(|_| match next() % sparse as u64 {
                    0 => alphabet[(next() % alphabet.len() as u64) as usize],
                    _ => b'a' + (next() % 26) as u8,
                })
                .collect();
            for i in 0..=len {
                let want = (i..len).find(|&j| fast::STOP[b[j] as usize]).unwrap_or(len);
                let words = finish(&b, fast::plain_run_words(&b, i));
                assert_eq!(words, want, "words from {i} in {b:?}");
                #[cfg(target_arch = "x86_64")]
                {
                    let sse2 = finish(&b, fast::plain_run_sse2(&b, i));
                    assert_eq!(sse2, want, "sse2 from {i} in {b:?}");
                }
            }
        }
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

    /// One buffer through files of every size and shape, as a worker uses it: each result is
    /// what a fresh inflate gives, never a byte of the file before.
    #[test]
    fn a_reused_buffer_holds_only_the_current_file() {
        let big = format!("[{}]", vec![A; 300].join(","));
        let files: Vec<Vec<u8>> = vec![
            gz(big.as_bytes()),
            gz(format!("[{B}]").as_bytes()),
            gz(format!("\u{feff}[{A}]").as_bytes()),
            gz(&vec![b' '; 20_000]),
            gz(format!("[{A}]").as_bytes()),
            gz(big.as_bytes())[..200].to_vec(),
            gz(big.repeat(3).as_bytes()),
            gz(b""),
        ];
        let mut buf = Vec::new();
        for limit in [1 << 20, 10_000] {
            for raw in &files {
                let fresh = inflate(raw, limit);
                let reused = inflate_into(raw, limit, &mut buf);
                assert_eq!(reused.json[..], fresh.json[..]);
                assert_eq!(reused.error, fresh.error);
                if reused.error.is_none() {
                    // And what flate2 itself reads, byte-order mark aside.
                    let mut whole = Vec::new();
                    MultiGzDecoder::new(&raw[..])
                        .read_to_end(&mut whole)
                        .expect("a whole file");
                    assert_eq!(reused.json[..], *strip_bom(&whole));
                }
            }
        }
        // The byte-order mark is not part of the JSON.
        let bom = inflate_into(&files[2], 1 << 20, &mut buf);
        assert!(bom.json.starts_with(b"["));
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

    /// The fast path must give exactly what the general reader gives, or step aside.
    fn same_as_general(json: &[u8]) -> bool {
        let general = parse_traces_general(json);
        let got = parse_traces(json);
        assert_eq!(
            got.traces,
            general.traces,
            "{}",
            String::from_utf8_lossy(json)
        );
        assert_eq!(
            got.errors,
            general.errors,
            "{}",
            String::from_utf8_lossy(json)
        );
        fast::parse(json).is_some()
    }

    #[test]
    fn fast_path_matches_the_general_reader_on_generated_trees() {
        let spec = crate::gen::GenSpec {
            old_shape_share: 0.3,
            ..crate::gen::GenSpec::fixtures()
        };
        let (objects, _) = crate::gen::build(&spec).unwrap();
        let (mut trace_files, mut fast_files) = (0, 0);
        for o in &objects {
            let inf = inflate(&o.body, 1 << 30);
            let fast = same_as_general(&inf.json);
            if o.key.contains("CloudTrace_") {
                trace_files += 1;
                fast_files += usize::from(fast);
            }
        }
        // Ordinary files (arrays of traces) take the fast path; the edge cases do not.
        assert!(
            fast_files * 10 >= trace_files * 8,
            "{fast_files} of {trace_files}"
        );
    }

    #[test]
    fn fast_path_steps_aside_for_what_it_does_not_read() {
        let cases: &[&str] = &[
            &format!("[{A},{B}]"),
            &format!(" \n[ {A} , {B} ]\n"),
            "[]",
            "[ ]",
            &format!("[{A},null]"),
            &format!("[{A},{B}"),
            &format!("[{A},{B},]"),
            &format!("[{A}] [{B}]"),
            &format!("[{A}] x"),
            r#"[{"trace_name":"log\u0069n","source_ip":"1.2.3.4"}]"#,
            r#"[{"trace_name":"login","x":"a\u00e9\n\"b"}]"#,
            r#"[{"trace_name":"login","x":"\ud800"}]"#,
            r#"[{"trace_name":"login","x":"\ud83d\ude00"}]"#,
            r#"[{"trace_name":"login","x":"\x"}]"#,
            "[{\"trace_name\":\"login\",\"x\":\"a\u{1}b\"}]",
            r#"[{"trace_name":"login","x":1e5}]"#,
            r#"[{"trace_name":"login","x":[1.5,-0,0.25,{"a":[true,false,null]}]}]"#,
            r#"[{"trace_name":"login","x":01}]"#,
            r#"[{"trace_name":"login","x":1.}]"#,
            r#"[{"trace_name":"login","x":-}]"#,
            r#"[{"trace_name":"login","x":tru}]"#,
            r#"[{"trace_name":"login","time":-5}]"#,
            r#"[{"trace_name":"login","time":1.5}]"#,
            r#"[{"trace_name":"login","time":99999999999999999999}]"#,
            r#"[{"trace_name":"login","time":null,"user":null}]"#,
            r#"[{"trace_name":"login","source_ip":7}]"#,
            r#"[{"trace_name":"login","trace_status":"warning","trace_rating":"normal"}]"#,
            r#"[{"trace_status":"warning","trace_rating":null,"trace_id":"x"}]"#,
            r#"[{"trace_name":"login","user":{"domain":"acme","name":"a","type":"User"}}]"#,
            r#"[{"trace_name":"login","user":{"domain":{"id":1}}}]"#,
            r#"[{"trace_name":"login","user":{"domain":{"domain":"x"}}}]"#,
            r#"[{"trace_name":"login","user":{"domain":null,"id":"i"}}]"#,
            r#"[{"trace_name":"login","user":[1]}]"#,
            r#"[{"traces":[{"trace_name":"login"}]}]"#,
            r#"[{"cts":{"trace_name":"login"}}]"#,
            r#"[{"unrelated":true}]"#,
            r#"[{}]"#,
            r#"[{"trace_name":"a","trace_name":null}]"#,
            r#"[{"trace_name":"login"   ,   "source_ip"  :  "::1"  }  ]"#,
            r#"[{"trace_na\u006de":"login"}]"#,
            "[{\"trace_name\":\"login\"}]\u{0}",
            &format!("[{}]", "[".repeat(120) + &"]".repeat(120)),
            &format!(
                r#"[{{"trace_name":"l","x":{}}}]"#,
                "[".repeat(120) + &"]".repeat(120)
            ),
        ];
        for c in cases {
            same_as_general(c.as_bytes());
        }
        assert!(same_as_general(format!("[{A},{B}]").as_bytes()));
        assert!(same_as_general(
            br#"[{"trace_name":"login","x":"\u00e9\n"}]"#
        ));
        // An escape in a field read: that object alone goes to the general reader.
        assert!(same_as_general(br#"[{"trace_name":"log\u0069n"}]"#));
        assert!(!same_as_general(br#"{"trace_name":"login"}"#));
        // Invalid UTF-8 in a skipped string: serde_json's own business.
        same_as_general(b"[{\"trace_name\":\"login\",\"x\":\"\xff\"}]");
    }

    #[test]
    fn fast_scan_finds_stops_at_every_offset_of_a_word() {
        for at in 0..20 {
            for stop in [
                "\u{1}", "\u{1f}", "\\n", "\\u00e9", "\\ud800", "\"", "\u{7f}", "é",
            ] {
                let mut v = "abcdefghijklmnopqrstuvwxyz".to_owned();
                v.insert_str(at, stop);
                let json = format!(r#"[{{"trace_name":"login","x":"{v}","source_ip":"1.2.3.4"}}]"#);
                same_as_general(json.as_bytes());
            }
        }
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
