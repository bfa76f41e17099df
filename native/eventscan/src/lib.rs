//! The common case of `services/clickstream/events.parse_with_text`, compiled: one pass over a
//! tracking-log line that checks it can be stored exactly as it is written and picks out the few
//! fields the loader reads (`time`, `username`, `ip`, `event_type`, `name`, `page` and
//! `context.user_id`, `context.course_id`, `context.path`).
//!
//! `scan(line, digest_size)` returns `(fields, text, digest)` only for a line whose event the
//! Python parser would read as an object stored as-is (no key to map, no `_id`, no field the loader
//! adds, nothing deep or suspect), where `fields` is that event restricted to those names (same
//! values, same nesting), `text` the line as `str` (without a final CR) and `digest` the BLAKE2b
//! digest of `line` itself, CR included (the content id's, `services/clickstream/ids.py`). For any
//! other line it returns None and the caller runs the Python parser, which gives the document or
//! the reason the line is rejected. So it declines whenever it is not sure: a duplicate of a
//! picked field, a picked field of another type than a string, null (or an integer for
//! `context.user_id`), any `.` or `$` in a key, a 19-digit run, a `\u` escape of a surrogate or
//! NUL, more than 100 `{` and `[`, a number of magnitude 1e308 or more.
//!
//! `prepare` and `prepare_bson` (block.rs, bson.rs) go further for a block of lines: the loader's
//! whole work on the common ones, for the embedded store and for MongoDB; `DayCounter` and
//! `EventTypeCounter` (counts.rs) keep the per-file counts.

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// `DeserializeSeed` for visitors (the macro comes before the modules that use it) of any JSON value: the seed is the visitor itself, handed to
/// `deserialize_any`.
macro_rules! seed_of_any_value {
    ($($seed:ty),* $(,)?) => {$(
        impl<'de> serde::de::DeserializeSeed<'de> for $seed {
            type Value = <Self as serde::de::Visitor<'de>>::Value;
            fn deserialize<D: serde::de::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    )*};
}

mod block;
mod bson;
mod counts;
mod geo;
mod isotime;
mod lines;

/// MongoDB's nesting limit; a line with more brackets than this is left to Python.
const MAX_BRACKETS: usize = 100;
/// Fields the loader adds: a line that has one at the top is re-encoded by Python.
pub(crate) const ADDED: [&str; 7] = [
    "_id",
    "time_date",
    "country",
    "subdivision",
    "geoip",
    "source_file",
    "source_line",
];
pub(crate) const PICKED: [&str; 6] = ["time", "username", "ip", "event_type", "name", "page"];
pub(crate) const CONTEXT_PICKED: [&str; 3] = ["user_id", "course_id", "path"];

/// A picked value; a string is borrowed from the line where it has no escape.
pub(crate) enum Val<'a> {
    Null,
    Str(Cow<'a, str>),
    Int(i64),
}

pub(crate) enum Context<'a> {
    Absent,
    Null,
    Map([Option<Val<'a>>; 3]),
}

fn decline<E: de::Error>() -> E {
    E::custom("left to the Python parser")
}

/// Any value, walked to check the keys of every object in it.
struct Walk;

seed_of_any_value!(Walk);

impl<'de> Visitor<'de> for Walk {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // Near the largest double, where a reading that rounds otherwise than orjson's would make
        // one parser see a finite number and the other infinity: leave it to Python.
        if v.abs() < 1e308 {
            Ok(())
        } else {
            Err(decline())
        }
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Walk)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Key)?.is_some() {
            map.next_value_seed(Walk)?;
        }
        Ok(())
    }
}

/// A key, refused if MongoDB could not store it as it is (any `.` or `$`: Python maps those).
pub(crate) struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        if v.contains(['.', '$']) {
            return Err(decline());
        }
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.contains(['.', '$']) {
            return Err(decline());
        }
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// A picked field: a string or null, or also an integer where `int` is set.
struct Pick {
    int: bool,
}

seed_of_any_value!(Pick);

impl<'de> Visitor<'de> for Pick {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Val<'de>, E> {
        if self.int {
            Ok(Val::Int(v))
        } else {
            Err(decline())
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val<'de>, E> {
        match i64::try_from(v) {
            Ok(v) if self.int => Ok(Val::Int(v)),
            _ => Err(decline()),
        }
    }
}

/// `context`: null, or an object whose picked fields are kept.
struct ContextSeed;

seed_of_any_value!(ContextSeed);

impl<'de> Visitor<'de> for ContextSeed {
    type Value = Context<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Context<'de>, E> {
        Ok(Context::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Context<'de>, A::Error> {
        let mut picked: [Option<Val<'de>>; 3] = [None, None, None];
        while let Some(key) = map.next_key_seed(Key)? {
            match CONTEXT_PICKED.iter().position(|name| *name == key) {
                Some(at) => {
                    if picked[at].is_some() {
                        return Err(decline());
                    }
                    picked[at] = Some(map.next_value_seed(Pick { int: at == 0 })?);
                }
                None => map.next_value_seed(Walk)?,
            }
        }
        Ok(Context::Map(picked))
    }
}

/// The event: the top-level object.
struct Event;

pub(crate) struct Fields<'a> {
    pub(crate) picked: [Option<Val<'a>>; 6],
    pub(crate) context: Context<'a>,
}

impl<'de> Visitor<'de> for Event {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields {
            picked: Default::default(),
            context: Context::Absent,
        };
        while let Some(key) = map.next_key_seed(Key)? {
            if let Some(at) = PICKED.iter().position(|name| *name == key) {
                if fields.picked[at].is_some() {
                    return Err(decline());
                }
                fields.picked[at] = Some(map.next_value_seed(Pick { int: false })?);
            } else if key == "context" {
                if !matches!(fields.context, Context::Absent) {
                    return Err(decline());
                }
                fields.context = map.next_value_seed(ContextSeed)?;
            } else if ADDED.contains(&key.as_ref()) {
                return Err(decline());
            } else {
                map.next_value_seed(Walk)?;
            }
        }
        Ok(fields)
    }
}

/// The byte tests Python makes before its parse, each a reason to leave the line to it. Three
/// simple passes rather than one that branches on every byte.
fn suspect(body: &[u8]) -> bool {
    if memchr::memchr2_iter(b'{', b'[', body)
        .nth(MAX_BRACKETS)
        .is_some()
    {
        return true;
    }
    if has_long_digit_run(body) {
        return true; // orjson and json read such integers differently
    }
    // `\u` then D8-DF (a surrogate) or 0000 (NUL), as `events._SUSPECT`
    memchr::memmem::find_iter(body, b"\\u").any(|at| {
        let hex = &body[at + 2..];
        let surrogate = hex.len() >= 2
            && (hex[0] == b'd' || hex[0] == b'D')
            && matches!(hex[1], b'8' | b'9' | b'a'..=b'f' | b'A'..=b'F');
        surrogate || hex.starts_with(b"0000")
    })
}

/// Whether `body` has 19 ASCII digits in a row. Read 64 bytes at a time as a mask of their digits
/// (`digit_mask`), where a run of 19 set bits is found by shifts (`has_run_in`); a run across two
/// chunks by counting the digits that end one and start the next. Looking at the bytes one by one
/// (the digits of a timestamp, an id) took 0.33 us a line of the benchmark's log, this 0.12.
fn has_long_digit_run(body: &[u8]) -> bool {
    const RUN: u32 = 19;
    // the digits in a row that end the bytes before the chunk being read
    let mut carried = 0u32;
    let mut chunks = body.chunks_exact(64);
    for chunk in &mut chunks {
        let mask = digit_mask(chunk.try_into().expect("64 bytes"));
        if mask == u64::MAX {
            carried += 64;
            if carried >= RUN {
                return true;
            }
            continue;
        }
        if carried + mask.trailing_ones() >= RUN || has_run_in(mask) {
            return true;
        }
        carried = mask.leading_ones();
    }
    let mut rest = [0u8; 64]; // the last bytes, then NULs (no digit)
    rest[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let mask = digit_mask(&rest);
    carried + mask.trailing_ones() >= RUN || has_run_in(mask)
}

/// Bit i set where byte i is an ASCII digit: 16 bytes a compare.
#[cfg(target_arch = "x86_64")]
fn digit_mask(chunk: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_set1_epi8,
    };
    let mut mask = 0u64;
    // SAFETY: SSE2 is part of every x86_64 CPU; each load reads 16 of the chunk's 64 bytes
    unsafe {
        let below = _mm_set1_epi8(b'0' as i8 - 1);
        let above = _mm_set1_epi8(b'9' as i8 + 1);
        for k in 0..4 {
            let bytes = _mm_loadu_si128(chunk.as_ptr().add(16 * k) as *const __m128i);
            // signed compares: the bytes from 0x80 up are negative, below '0'
            let digits = _mm_and_si128(_mm_cmpgt_epi8(bytes, below), _mm_cmplt_epi8(bytes, above));
            mask |= u64::from(_mm_movemask_epi8(digits) as u16) << (16 * k);
        }
    }
    mask
}

/// Bit i set where byte i is an ASCII digit.
#[cfg(not(target_arch = "x86_64"))]
fn digit_mask(chunk: &[u8; 64]) -> u64 {
    let mut mask = 0u64;
    for (i, &b) in chunk.iter().enumerate() {
        mask |= u64::from(b.is_ascii_digit()) << i;
    }
    mask
}

/// Whether `mask` has 19 set bits in a row.
fn has_run_in(mask: u64) -> bool {
    // bit i of `m` set: bits i to i + 2^k - 1 of `mask` are, for k = 1, 2, 4, 8, 16; then 19
    let mut m = mask & (mask >> 1);
    m &= m >> 2;
    m &= m >> 4;
    m &= m >> 8;
    m &= mask >> 16 & mask >> 17 & mask >> 18;
    m != 0
}

/// The text of a line (without a final CR) that passes the byte tests before the parse (an
/// object, nothing `suspect`, UTF-8); None for a line left to the Python parser.
pub(crate) fn checked_text(raw: &[u8]) -> Option<&str> {
    let body = raw.strip_suffix(b"\r").unwrap_or(raw);
    if body.first() != Some(&b'{') || suspect(body) {
        return None;
    }
    std::str::from_utf8(body).ok()
}

/// The picked fields of a line stored as it is written, and its text (without a final CR); None
/// for a line left to the Python parser (see the module's comment).
pub(crate) fn read(raw: &[u8]) -> Option<(Fields<'_>, &str)> {
    let text = checked_text(raw)?;
    let mut reader = serde_json::Deserializer::from_str(text);
    let fields = reader.deserialize_map(Event).ok()?;
    reader.end().ok()?;
    Some((fields, text))
}

/// `hashlib.blake2b(raw, digest_size=N).digest()` for N = `out.len()` (1 to 64).
pub(crate) fn blake2b(raw: &[u8], out: &mut [u8]) -> PyResult<()> {
    if !(1..=64).contains(&out.len()) {
        return Err(PyValueError::new_err("digest_size must be 1 to 64"));
    }
    let hash = blake2b_simd::Params::new().hash_length(out.len()).hash(raw);
    out.copy_from_slice(hash.as_bytes());
    Ok(())
}

fn to_py<'py>(py: Python<'py>, value: &Val<'_>) -> PyResult<PyObject> {
    Ok(match value {
        Val::Null => py.None(),
        Val::Str(s) => PyString::new(py, s).into_any().unbind(),
        Val::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
    })
}

/// What `scan` gives for a line it takes.
type Scanned<'py> = (
    Bound<'py, PyDict>,
    Bound<'py, PyString>,
    Bound<'py, PyBytes>,
);

/// `(fields, text, digest)` of a line stored as it is written, or None (see the module's comment);
/// `digest` is `hashlib.blake2b(raw, digest_size=digest_size).digest()` (1 to 64 bytes).
#[pyfunction]
fn scan<'py>(py: Python<'py>, raw: &[u8], digest_size: usize) -> PyResult<Option<Scanned<'py>>> {
    let Some((fields, text)) = read(raw) else {
        return Ok(None);
    };
    // the keys as interned Python strings, made once (a new key string per call cost a hash each)
    let names = [
        intern!(py, "time"),
        intern!(py, "username"),
        intern!(py, "ip"),
        intern!(py, "event_type"),
        intern!(py, "name"),
        intern!(py, "page"),
    ];
    let context_names = [
        intern!(py, "user_id"),
        intern!(py, "course_id"),
        intern!(py, "path"),
    ];
    let event = PyDict::new(py);
    for (name, value) in names.iter().zip(fields.picked.iter()) {
        if let Some(value) = value {
            event.set_item(name, to_py(py, value)?)?;
        }
    }
    match &fields.context {
        Context::Absent => {}
        Context::Null => event.set_item(intern!(py, "context"), py.None())?,
        Context::Map(picked) => {
            let context = PyDict::new(py);
            for (name, value) in context_names.iter().zip(picked.iter()) {
                if let Some(value) = value {
                    context.set_item(name, to_py(py, value)?)?;
                }
            }
            event.set_item(intern!(py, "context"), context)?;
        }
    }
    if !(1..=64).contains(&digest_size) {
        return Err(PyValueError::new_err("digest_size must be 1 to 64"));
    }
    let mut digest = [0u8; 64];
    blake2b(raw, &mut digest[..digest_size])?;
    Ok(Some((
        event,
        PyString::new(py, text),
        PyBytes::new(py, &digest[..digest_size]),
    )))
}

#[pymodule]
fn eventscan(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(block::prepare, m)?)?;
    m.add_function(wrap_pyfunction!(bson::prepare_bson, m)?)?;
    m.add_function(wrap_pyfunction!(lines::split_lines, m)?)?;
    m.add_class::<bson::Bson>()?;
    m.add_class::<bson::BsonBatch>()?;
    m.add_class::<bson::BsonRun>()?;
    m.add_class::<counts::CountedRows>()?;
    m.add_class::<geo::GeoReader>()?;
    m.add_class::<counts::DayCounter>()?;
    m.add_class::<counts::EventTypeCounter>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `has_long_digit_run` answers, a byte at a time.
    fn run_of_19(body: &[u8]) -> bool {
        let mut run = 0;
        for &b in body {
            run = if b.is_ascii_digit() { run + 1 } else { 0 };
            if run >= 19 {
                return true;
            }
        }
        false
    }

    #[test]
    fn a_long_digit_run_is_found_wherever_it_lies() {
        // runs of 18, 19 and 20 digits at every offset of lines of many lengths (across the
        // 64-byte chunks, and the end), among digits and other bytes
        for length in [0, 1, 18, 19, 20, 63, 64, 65, 127, 128, 129, 200] {
            for run in [18, 19, 20, 64, 65] {
                for at in 0..length {
                    for filler in [b'a', b'/', b':', b'0'] {
                        let mut body = vec![filler; length];
                        for (i, b) in body.iter_mut().enumerate() {
                            if filler == b'0' && i % 7 == 3 {
                                *b = b'x'; // digits broken into short runs
                            }
                        }
                        for b in body.iter_mut().skip(at).take(run) {
                            *b = b'7';
                        }
                        assert_eq!(
                            has_long_digit_run(&body),
                            run_of_19(&body),
                            "{length} {run} {at}"
                        );
                    }
                }
            }
        }
        // pseudo-random lines of digits and others
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let length = (state % 300) as usize;
            let body: Vec<u8> = (0..length)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if state % 16 == 0 {
                        b'-'
                    } else {
                        b'0' + (state % 10) as u8
                    }
                })
                .collect();
            assert_eq!(has_long_digit_run(&body), run_of_19(&body));
        }
    }
}
