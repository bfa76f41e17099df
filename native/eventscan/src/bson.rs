//! `prepare_bson`: `prepare` for MongoDB. A common line becomes the BSON document pymongo would
//! make of the loader's dict (orjson's reading of the line, the added fields set by
//! `_Loader._complete`, `_id` first), appended to the batch (`BsonBatch`) that the MongoDB store
//! sends as it is.
//! One parse of the line both writes the document's elements and picks the fields `read` picks
//! (`EventElements`); the line is declined where `read` or the writing would decline it.
//!
//! Python's reading and pymongo's encoding, done here: an integer is an int32 where it fits, else
//! an int64; a number with a fraction or an exponent a double; a naive UTC time a BSON datetime in
//! whole milliseconds (cut, not rounded). Declined besides what `block::common` declines (the line
//! then goes through the per-line path): a key twice in one object (Python keeps the first place
//! and the last value), and `-0` or `-0.0` (orjson reads `-0` as the integer 0, serde as -0.0).

use crate::block::{classify, counted_to_python, ip_to_python, note, without_lock, Common};
use crate::counts::{CountedRows, Row};
use crate::{checked_text, Context, Fields, Key, Val, ADDED, CONTEXT_PICKED, PICKED};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::ops::Range;

fn decline<E: de::Error>() -> E {
    E::custom("left to the per-line path")
}

fn put_cstring(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as i32 + 1).to_le_bytes());
    put_cstring(out, text);
}

/// An element `name: value` of an int (int32 where it fits, as pymongo writes a Python int).
fn put_int(out: &mut Vec<u8>, name: &str, value: i64) {
    match i32::try_from(value) {
        Ok(small) => {
            out.push(0x10);
            put_cstring(out, name);
            out.extend_from_slice(&small.to_le_bytes());
        }
        Err(_) => {
            out.push(0x12);
            put_cstring(out, name);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

fn put_str(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x02);
    put_cstring(out, name);
    put_string(out, value);
}

/// An array element's name: its index in decimal, without an allocation.
fn put_index(out: &mut Vec<u8>, mut index: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (index % 10) as u8;
        index /= 10;
        if index == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.push(0);
}

/// Where a block's documents are written: their bytes, one after the other, and the keys of the
/// objects being written (where each key's name is in `out`), the innermost object's last. Kept
/// from one block to the next, so that a block makes no allocation per line for them.
#[derive(Default)]
struct Buf {
    out: Vec<u8>,
    keys: Vec<Range<usize>>,
}

/// An object with more keys than this is left to the per-line path (each key is compared with the
/// object's keys before it).
const MAX_KEYS: usize = 1000;

/// At most so many bytes of `Buf` are kept for the next block (a block of long lines may take
/// more while it is written).
const KEPT: usize = 16 << 20;

thread_local! {
    static BUF: RefCell<Buf> = RefCell::default();
}

/// Patch the length of the document or array that starts at `start` and ends here.
fn close(out: &mut Vec<u8>, start: usize) {
    out.push(0);
    let length = (out.len() - start) as i32;
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
}

/// A value: its payload is written, its BSON type returned.
struct Value<'a>(&'a mut Buf);

seed_of_any_value!(Value<'_>);

impl<'de> Visitor<'de> for Value<'_> {
    type Value = u8;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<u8, E> {
        self.0.out.push(u8::from(v));
        Ok(0x08)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u8, E> {
        match i32::try_from(v) {
            Ok(small) => {
                self.0.out.extend_from_slice(&small.to_le_bytes());
                Ok(0x10)
            }
            Err(_) => {
                self.0.out.extend_from_slice(&v.to_le_bytes());
                Ok(0x12)
            }
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u8, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(decline()),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u8, E> {
        // as `Walk`: near the largest double, the parsers' rounding could differ; a negative
        // zero may be orjson's integer 0
        if v.abs() >= 1e308 || (v == 0.0 && v.is_sign_negative()) {
            return Err(decline());
        }
        self.0.out.extend_from_slice(&v.to_le_bytes());
        Ok(0x01)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u8, E> {
        put_string(&mut self.0.out, v);
        Ok(0x02)
    }
    fn visit_unit<E: de::Error>(self) -> Result<u8, E> {
        Ok(0x0A)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u8, A::Error> {
        let buf = self.0;
        let start = buf.out.len();
        buf.out.extend_from_slice(&[0; 4]);
        let mut index = 0usize;
        loop {
            let type_at = buf.out.len();
            buf.out.push(0);
            put_index(&mut buf.out, index);
            match seq.next_element_seed(Value(buf))? {
                Some(kind) => buf.out[type_at] = kind,
                None => {
                    buf.out.truncate(type_at);
                    break;
                }
            }
            index += 1;
        }
        close(&mut buf.out, start);
        Ok(0x04)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<u8, A::Error> {
        let buf = self.0;
        let start = buf.out.len();
        buf.out.extend_from_slice(&[0; 4]);
        Elements(&mut *buf).visit_map(map)?;
        close(&mut buf.out, start);
        Ok(0x03)
    }
}

/// Starts the next element of an object being written: reads its key (declined if the object had
/// it already: its keys so far are `buf.keys[first..]`) and writes it after a place for the
/// element's type. Returns that place and the key, or None at the end of the object (its keys
/// then taken off `buf.keys`).
fn next_element<'de, A: MapAccess<'de>>(
    map: &mut A,
    buf: &mut Buf,
    first: usize,
) -> Result<Option<(usize, Cow<'de, str>)>, A::Error> {
    let Some(key) = map.next_key_seed(Key)? else {
        buf.keys.truncate(first);
        return Ok(None);
    };
    let name = key.as_bytes();
    // a key twice; or an object of so many keys that the search for one would be slow (the
    // per-line path takes it)
    if buf.keys.len() - first >= MAX_KEYS
        || buf.keys[first..]
            .iter()
            .any(|at| &buf.out[at.clone()] == name)
    {
        return Err(decline());
    }
    let type_at = buf.out.len();
    buf.out.push(0);
    buf.keys.push(type_at + 1..type_at + 1 + name.len());
    put_cstring(&mut buf.out, &key);
    Ok(Some((type_at, key)))
}

/// The elements of an object (without its length and end), each key once.
struct Elements<'a>(&'a mut Buf);

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let buf = self.0;
        let first = buf.keys.len();
        while let Some((type_at, _)) = next_element(&mut map, buf, first)? {
            buf.out[type_at] = map.next_value_seed(Value(buf))?;
        }
        Ok(())
    }
}

/// A field `read` picks, written as `Value` writes it, and kept: a string or null, or also an
/// integer where `int` is set (`Pick`'s kinds; any other declines the line).
struct PickValue<'a> {
    buf: &'a mut Buf,
    int: bool,
}

seed_of_any_value!(PickValue<'_>);

impl<'de> Visitor<'de> for PickValue<'_> {
    type Value = (u8, Val<'de>);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(u8, Val<'de>), E> {
        put_string(&mut self.buf.out, v);
        Ok((0x02, Val::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(u8, Val<'de>), E> {
        put_string(&mut self.buf.out, v);
        Ok((0x02, Val::Str(Cow::Owned(v.to_owned()))))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(u8, Val<'de>), E> {
        Ok((0x0A, Val::Null))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(u8, Val<'de>), E> {
        if !self.int {
            return Err(decline());
        }
        Ok((Value(self.buf).visit_i64::<E>(v)?, Val::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(u8, Val<'de>), E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(decline()),
        }
    }
}

/// `context` (`ContextSeed`'s null or object), written as `Value` writes it, its picked fields kept.
struct ContextValue<'a>(&'a mut Buf);

seed_of_any_value!(ContextValue<'_>);

impl<'de> Visitor<'de> for ContextValue<'_> {
    type Value = (u8, Context<'de>);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(u8, Context<'de>), E> {
        Ok((0x0A, Context::Null))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(u8, Context<'de>), A::Error> {
        let buf = self.0;
        let start = buf.out.len();
        buf.out.extend_from_slice(&[0; 4]);
        let first = buf.keys.len();
        let mut picked: [Option<Val<'de>>; 3] = [None, None, None];
        while let Some((type_at, key)) = next_element(&mut map, buf, first)? {
            buf.out[type_at] = match CONTEXT_PICKED.iter().position(|name| *name == key) {
                Some(at) => {
                    let (kind, value) = map.next_value_seed(PickValue { buf, int: at == 0 })?;
                    picked[at] = Some(value);
                    kind
                }
                None => map.next_value_seed(Value(buf))?,
            };
        }
        close(&mut buf.out, start);
        Ok((0x03, Context::Map(picked)))
    }
}

/// The event's elements (as `Elements` writes them) and the fields `read` picks (as `Event`
/// keeps them), in one pass; declined where either declines.
struct EventElements<'a>(&'a mut Buf);

impl<'de> Visitor<'de> for EventElements<'_> {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let buf = self.0;
        let first = buf.keys.len();
        let mut fields = Fields {
            picked: Default::default(),
            context: Context::Absent,
        };
        while let Some((type_at, key)) = next_element(&mut map, buf, first)? {
            let key = key.as_ref();
            if ADDED.contains(&key) {
                return Err(decline());
            }
            buf.out[type_at] = if let Some(at) = PICKED.iter().position(|name| *name == key) {
                let (kind, value) = map.next_value_seed(PickValue { buf, int: false })?;
                fields.picked[at] = Some(value);
                kind
            } else if key == "context" {
                let (kind, context) = map.next_value_seed(ContextValue(buf))?;
                fields.context = context;
                kind
            } else {
                map.next_value_seed(Value(buf))?
            };
        }
        Ok(fields)
    }
}

/// `read` and the event's elements written to `buf.out`, in one pass over the line: the picked
/// fields, or None for a line that `read` or `Elements` would decline (what it wrote is then
/// left in `buf`: the caller takes it back).
fn read_bson<'a>(raw: &'a [u8], buf: &mut Buf) -> Option<Fields<'a>> {
    let text = checked_text(raw)?;
    let mut reader = serde_json::Deserializer::from_str(text);
    let fields = reader.deserialize_map(EventElements(buf)).ok()?;
    reader.end().ok()?;
    Some(fields)
}

/// One document of a batch (`BsonBatch[i]`, a copy of its bytes), which pymongo sends as it is:
/// it has what pymongo's encoder reads of bson's `RawBSONDocument` (`_type_marker` 101 and the
/// bytes in `raw`), without the cost of that class's constructor (its checks, its decoding
/// options). Reading it (`doc["_id"]`, for a duplicate; `in`, `get`, `len`, iteration) goes
/// through a `RawBSONDocument` of the bytes, made once.
#[pyclass(frozen, module = "eventscan", mapping)]
pub(crate) struct Bson {
    raw: Py<PyBytes>,
    document: GILOnceCell<PyObject>,
}

impl Bson {
    fn document<'py>(&self, py: Python<'py>) -> PyResult<&Bound<'py, PyAny>> {
        let document = self.document.get_or_try_init(py, || {
            let class = py.import("bson.raw_bson")?.getattr("RawBSONDocument")?;
            PyResult::Ok(class.call1((self.raw.bind(py),))?.unbind())
        })?;
        Ok(document.bind(py))
    }
}

#[pymethods]
impl Bson {
    /// bson's `_RAW_BSON_DOCUMENT_MARKER`.
    #[classattr]
    #[pyo3(name = "_type_marker")]
    const TYPE_MARKER: i64 = 101;

    #[new]
    fn new(raw: Py<PyBytes>) -> Self {
        Bson {
            raw,
            document: GILOnceCell::new(),
        }
    }

    #[getter]
    fn raw(&self, py: Python<'_>) -> Py<PyBytes> {
        self.raw.clone_ref(py)
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.document(py)?.get_item(key)
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.document(py)?.contains(key)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.document(py)?.len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.document(py)?.try_iter()?.into_any())
    }

    #[pyo3(signature = (key, default=None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.document(py)?.call_method1("get", (key, default))
    }
}

/// An ObjectId `_id` as the first element of a document: its type byte and name, after the
/// document's length (`stores/documents/mongo._RAW_OBJECT_ID`).
const OBJECT_ID_FIRST: &[u8] = b"\x07_id\x00";

/// A batch of BSON documents for MongoDB, one after the other in one buffer: what `prepare_bson`
/// appends its documents to, and `append` any other (the loader's dicts, encoded by bson).
///
/// One buffer rather than an object per document: the documents are made on the reading thread
/// and sent, long after, by the store's insert lanes; an object each meant a cache miss on each
/// side for every document (its reference count, its bytes), a Python loop to gather a command's
/// documents and pymongo's encoder reading them one by one, and routing and freeing them one by
/// one on the writer thread, ~0.9 us of CPU an event there alone (bench/README.md, "Latest run of
/// the three"). `run` gives the documents of one `insert` command as one run of bytes, which the
/// lane hands to pymongo.
///
/// It reads as a sequence of `Bson`s (`batch[i]`, a copy of that document: for the rare look-up
/// of a duplicate's `_id`).
#[pyclass(module = "eventscan", sequence)]
#[derive(Default)]
pub(crate) struct BsonBatch {
    buf: Vec<u8>,
    /// where each document starts in `buf`; it ends where the next starts, the last at the end
    starts: Vec<usize>,
}

impl BsonBatch {
    fn document(&self, index: usize) -> &[u8] {
        let end = self
            .starts
            .get(index + 1)
            .copied()
            .unwrap_or(self.buf.len());
        &self.buf[self.starts[index]..end]
    }
}

#[pymethods]
impl BsonBatch {
    #[new]
    fn new() -> Self {
        BsonBatch::default()
    }

    fn __len__(&self) -> usize {
        self.starts.len()
    }

    fn __getitem__(&self, py: Python<'_>, index: isize) -> PyResult<Bson> {
        let len = self.starts.len() as isize;
        let at = if index < 0 { index + len } else { index };
        if !(0..len).contains(&at) {
            return Err(PyIndexError::new_err("BsonBatch index out of range"));
        }
        Ok(Bson::new(
            PyBytes::new(py, self.document(at as usize)).unbind(),
        ))
    }

    /// Append one document's BSON (a `bytes`), checked to be one whole document: its length
    /// prefix its size, its last byte the end.
    fn append(&mut self, raw: &[u8]) -> PyResult<()> {
        let whole = raw.len() >= 5
            && raw.len() <= i32::MAX as usize
            && raw[..4] == (raw.len() as i32).to_le_bytes()
            && raw[raw.len() - 1] == 0;
        if !whole {
            return Err(PyValueError::new_err("not one whole BSON document"));
        }
        self.starts.push(self.buf.len());
        self.buf.extend_from_slice(raw);
        Ok(())
    }

    /// `stores/documents/mongo._routes` of the batch, if every document's `_id` is an ObjectId
    /// first (as `prepare_bson` and the loader make them): the positions each of `lanes` lanes
    /// sends, in order, a document's lane being its ObjectId's last byte modulo `lanes`
    /// (`_lane_of`). None otherwise (or for no lane): the store then routes it itself.
    fn routes(&self, lanes: usize) -> Option<Vec<Vec<usize>>> {
        if lanes == 0 {
            return None;
        }
        let mut routes: Vec<Vec<usize>> = (0..lanes)
            .map(|_| Vec::with_capacity(self.starts.len() / lanes + 1))
            .collect();
        for position in 0..self.starts.len() {
            let raw = self.document(position);
            if raw.len() < 21 || &raw[4..9] != OBJECT_ID_FIRST {
                return None;
            }
            routes[usize::from(raw[20]) % lanes].push(position);
        }
        Some(routes)
    }

    /// The documents at `positions`, in that order, as one run of bytes (`BsonRun`).
    fn run(&self, py: Python<'_>, positions: Vec<usize>) -> PyResult<BsonRun> {
        let mut length = 0;
        for &position in &positions {
            if position >= self.starts.len() {
                return Err(PyIndexError::new_err("BsonBatch index out of range"));
            }
            length += self.document(position).len();
        }
        // a bytes object of that length, not yet written (`PyBytes::new_with` would zero it first)
        // SAFETY: `PyBytes_FromStringAndSize` with no source gives a new bytes object (or NULL,
        // an error); its contents are written below before it is returned
        let raw = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                pyo3::ffi::PyBytes_FromStringAndSize(
                    std::ptr::null(),
                    length as pyo3::ffi::Py_ssize_t,
                ),
            )?
            .downcast_into_unchecked::<PyBytes>()
        };
        // SAFETY: the object is new, `length` bytes long, and not yet seen by any other code
        let out = unsafe {
            std::slice::from_raw_parts_mut(
                pyo3::ffi::PyBytes_AsString(raw.as_ptr()) as *mut u8,
                length,
            )
        };
        // copied without the lock: the reading thread makes the next batch meanwhile
        py.allow_threads(|| {
            let mut at = 0;
            for &position in &positions {
                let document = self.document(position);
                out[at..at + document.len()].copy_from_slice(document);
                at += document.len();
            }
        });
        Ok(BsonRun {
            raw: raw.unbind(),
            count: positions.len(),
        })
    }
}

/// Documents sent as one run: pymongo's encoder writes an object of `_type_marker` 101 as the
/// bytes of its `raw`, without reading them, and the documents of an `insert` command go in a
/// section of their own (OP_MSG's document sequence: the documents one after the other), so the
/// run reaches the server as its documents, each counted (`n`, a write error's `index`) in
/// order. Made by `BsonBatch.run` for the MongoDB store's lanes, and nothing else: it is not one
/// document, and has no reading of one.
#[pyclass(frozen, module = "eventscan")]
pub(crate) struct BsonRun {
    raw: Py<PyBytes>,
    count: usize,
}

#[pymethods]
impl BsonRun {
    /// bson's `_RAW_BSON_DOCUMENT_MARKER`.
    #[classattr]
    #[pyo3(name = "_type_marker")]
    const TYPE_MARKER: i64 = 101;

    #[getter]
    fn raw(&self, py: Python<'_>) -> Py<PyBytes> {
        self.raw.clone_ref(py)
    }

    /// The number of documents in the run.
    fn __len__(&self) -> usize {
        self.count
    }
}

/// A line's document but for its place, as two runs of `Buf::out`: `front` is the length
/// (patched later), `_id`, the event's own elements and `time_date`; `back` is `geoip`,
/// `source_file`, `source_line` and the end.
struct Parts {
    common: Common,
    front: Range<usize>,
    back: Range<usize>,
}

/// What is the same for every line of a `prepare_bson` call.
struct File<'a> {
    time_first: bool,
    source_file: &'a str,
    geoip: Option<i64>,
    enrolments: bool,
}

/// Writes a line's document but for its place at the end of `buf.out`; None for a line left to
/// the per-line path (nothing written, as for an error).
fn bson_line(
    raw: &[u8],
    hashed: &[u8],
    line: u64,
    file: &File<'_>,
    buf: &mut Buf,
) -> PyResult<Option<Parts>> {
    let File {
        time_first,
        source_file,
        geoip,
        enrolments,
    } = *file;
    // BSON takes a little more than the JSON text (a length and a NUL per string, the added
    // fields): room for it (the buffer grows by doubling, and is kept for the next block)
    buf.out
        .reserve(raw.len() + raw.len() / 4 + source_file.len() + 128);
    let start = buf.out.len();
    buf.keys.clear();
    buf.out.extend_from_slice(&[0; 4]);
    buf.out.push(0x07);
    put_cstring(&mut buf.out, "_id");
    let id_at = buf.out.len();
    buf.out.extend_from_slice(&[0; 12]); // the id, once `classify` has made it
    let common = match read_bson(raw, buf) {
        Some(fields) => classify(raw, &fields, time_first, hashed, enrolments),
        None => Ok(None),
    };
    let common = match common {
        Ok(Some(common)) => common,
        other => {
            buf.out.truncate(start);
            return other.map(|_| None);
        }
    };
    let out = &mut buf.out;
    out[id_at..id_at + 12].copy_from_slice(&common.id);
    match &common.when {
        None => {
            out.push(0x0A);
            put_cstring(out, "time_date");
        }
        Some(t) => {
            out.push(0x09);
            put_cstring(out, "time_date");
            let millis = t.epoch_seconds() * 1000 + i64::from(t.micro / 1000);
            out.extend_from_slice(&millis.to_le_bytes());
        }
    }
    let middle = out.len();
    if let Some(build) = geoip {
        put_int(out, "geoip", build);
    }
    put_str(out, "source_file", source_file);
    put_int(out, "source_line", line as i64);
    out.push(0);
    Ok(Some(Parts {
        common,
        front: start..middle,
        back: middle..out.len(),
    }))
}

/// A value of `places`: (place fields' text, country, subdivision).
type Place<'py> = (
    Bound<'py, PyAny>,
    Option<Bound<'py, PyString>>,
    Option<Bound<'py, PyString>>,
);

/// `prepare` for MongoDB: appends the documents of the lines taken to `batch`, returns
/// `(counted, numbers, size, declined, missing)`. The lines are numbered from `first`.
/// A line is taken, its BSON appended to `batch`, where its ip is a key of `places` (the absent
/// or null ip is the key None); `counted`, `numbers` and `size` are `prepare`'s (one number for
/// each document appended); `declined` the indexes of the lines left to the per-line path,
/// `missing` `(index, ip)` of the lines taken whose ip is not yet in `places` (call again with
/// their ip there, or give `place`). `places` maps an ip to `(place, country, subdivision)`: a
/// `country` that is not None is stored, a `subdivision` if it is not empty. `geoip` is the
/// GeoIP build stored with each event, if any; `source_file` the file's name as stored. Given
/// `rows`, the counted events are appended to it rather than returned in `counted` (then empty).
/// Given `noted`, the enrolment events are taken too, and the indexes of those taken are
/// appended to it (also those in `missing`), as `prepare`'s. Given `place`, a callable, a line
/// whose ip is not in `places` is not `missing`: its place is `place(ip)` (a value as `places`'
/// ones; the caller keeps it there if it will), and it is taken in its turn.
#[pyfunction]
#[pyo3(signature = (lines, first, time_first, source_file, geoip, places, batch, rows=None, noted=None, place=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_bson<'py>(
    py: Python<'py>,
    lines: &Bound<'py, PyList>,
    first: u64,
    time_first: bool,
    source_file: &str,
    geoip: Option<i64>,
    places: &Bound<'py, PyDict>,
    batch: &Bound<'py, BsonBatch>,
    rows: Option<&Bound<'py, CountedRows>>,
    noted: Option<&Bound<'py, PyList>>,
    place: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let file = File {
        time_first,
        source_file,
        geoip,
        enrolments: noted.is_some(),
    };
    let number = |index: usize| first + index as u64;
    // the documents are written one after the other in the thread's `Buf`, then each copied to
    // the batch with its place: no allocation of its own per line (on an error the buffer is
    // not put back: the next call starts a new one)
    let mut buf = BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let (sizes, prepared) = without_lock(py, lines, time_first, |index, raw, hashed| {
        bson_line(raw, hashed, number(index), &file, &mut buf)
    })?;
    let counted = PyList::empty(py);
    let numbers = PyList::empty(py);
    let declined = PyList::empty(py);
    let missing = PyList::empty(py);
    let mut size = 0;
    let mut middle = Vec::new();
    for (index, p) in prepared.into_iter().enumerate() {
        let Some(p) = p? else {
            declined.append(index)?;
            continue;
        };
        note(noted, index, &p.common)?;
        let ip = ip_to_python(py, &p.common.ip);
        let place = match (places.get_item(&ip)?, place) {
            (Some(known), _) => known,
            // a new ip's place, made by the loader (which keeps it in `places`): the line is
            // not read a second time
            (None, Some(make)) => make.call1((&ip,))?,
            (None, None) => {
                missing.append((index, ip))?;
                continue;
            }
        };
        // the place's own str objects: no copy of them for the counted tuple
        let (_, country, subdivision): Place<'py> = place.extract()?;
        middle.clear();
        if let Some(country) = &country {
            put_str(&mut middle, "country", country.to_str()?);
        }
        if let Some(subdivision) = &subdivision {
            let subdivision = subdivision.to_str()?;
            if !subdivision.is_empty() {
                put_str(&mut middle, "subdivision", subdivision);
            }
        }
        {
            // borrowed for each document only: `place` runs Python code between two
            let mut batch = batch.try_borrow_mut()?;
            let (front, back) = (&buf.out[p.front], &buf.out[p.back]);
            let length = front.len() + middle.len() + back.len();
            let start = batch.buf.len();
            batch.starts.push(start);
            batch.buf.extend_from_slice(front);
            batch.buf[start..start + 4].copy_from_slice(&(length as i32).to_le_bytes());
            batch.buf.extend_from_slice(&middle);
            batch.buf.extend_from_slice(back);
        }
        match rows {
            // borrowed for each row only, as the batch
            Some(rows) => rows.try_borrow_mut()?.rows.push(Row::of(
                p.common,
                country.map(|c| c.to_str().map(str::to_owned)).transpose()?,
            )),
            None => {
                let country = match country {
                    None => py.None().into_bound(py),
                    Some(country) => country.into_any(),
                };
                counted.append(counted_to_python(py, &p.common, country, ip)?)?;
            }
        }
        numbers.append(number(index))?;
        size += sizes[index];
    }
    buf.out.clear();
    buf.out.shrink_to(KEPT);
    buf.keys.clear();
    buf.keys.shrink_to(MAX_KEYS);
    BUF.with(|b| *b.borrow_mut() = buf);
    PyTuple::new(
        py,
        [
            counted.into_any(),
            numbers.into_any(),
            size.into_pyobject(py)?.into_any(),
            declined.into_any(),
            missing.into_any(),
        ],
    )
}
