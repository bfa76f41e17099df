//! `prepare`: the whole of the loader's work on a common line, for a block of lines, where the
//! stored text is the line's own (the embedded store; `services/clickstream/service.py`).
//!
//! For each line that `read` takes and whose picked fields are all of the common kinds, it gives
//! what the loader would compute in Python: the `_id` key, the stored text (the place fields,
//! which need the GeoIP lookup, come from the loader's `places`), the time, the course, the user,
//! the event name and the ip. Every other line is left to the loader's per-line path, which
//! decides it as before. Declined here besides what `read` declines:
//!
//! * a `time` of another form than `isotime` reads (a line without `time`, or with a null one, is
//!   taken: it has no time);
//! * a string `context.user_id` of other than ASCII digits, or one beyond 64 bits;
//! * a username whose last character is not printable ASCII (Python strips Unicode spaces there);
//! * a username or course longer than 255 characters, a time before the year 1000 (rejected);
//! * an enrolment event, unless the caller asks for their indexes (`noted`): the loader keeps
//!   more of it (its `event`, which it reads itself).
//!
//! Without a non-empty `context.course_id` (or without a `context` object) the course is looked
//! for in the page, the event type and the context's path, as `events.course_of` does
//! (`course_in`).

use crate::counts::{CountedRows, Row};
use crate::isotime::{self, Time};
use crate::{blake2b, read, Context, Fields, Val};
use blake2b_simd::many::{hash_many, HashManyJob};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDateTime, PyDict, PyList, PyString, PyTuple};
use std::borrow::Cow;
use std::fmt::Write;

/// The VARCHAR(255) of the per-day counts' `course_id` and `username` (`events.MAX_NAME`).
const MAX_NAME: usize = 255;
/// `derived_counts.ENROLMENT`.
const ENROLMENT: &str = "edx.course.enrollment.";
/// 2**32: the first second the 4 bytes of a time-first id cannot hold.
const END_SECONDS: i64 = 1 << 32;

/// What the loader computes from a common line, whatever the store.
pub(crate) struct Common {
    /// The content id's 12 bytes (`ids.content_id`).
    pub(crate) id: [u8; 12],
    pub(crate) when: Option<Time>,
    pub(crate) course: String,
    pub(crate) user_id: Option<i64>,
    pub(crate) username: String,
    pub(crate) name: String,
    pub(crate) ip: Option<String>,
}

struct Prepared {
    common: Common,
    key: String,
    head: String,
    tail: String,
}

/// `events.course_of` past `context.course_id`: the course key in the first of the page URL, the
/// event type and the context's path that holds one (`_COURSE_IN_PATH`, else `_COURSE_IN_BLOCK`),
/// else "".
fn course_in(candidates: [Option<&str>; 3]) -> Cow<'_, str> {
    for candidate in candidates.into_iter().flatten() {
        if let Some(found) = course_in_path(candidate) {
            return Cow::Borrowed(found);
        }
        if let Some([org, number, run]) = course_in_block(candidate) {
            return Cow::Owned(format!("course-v1:{org}+{number}+{run}"));
        }
    }
    Cow::Borrowed("")
}

/// The first `N` runs of `text`, each ended by `end` (none empty, none holding a character of
/// `stops`, which holds `end`), and how much of `text` they take with their ends. The runs of
/// `[^/?#]+/` and `[^+/]+\+` in a regular expression: each can only be a whole run, so no
/// backtracking could match otherwise.
fn runs<'a, const N: usize>(
    text: &'a str,
    stops: &[char],
    end: char,
) -> Option<([&'a str; N], usize)> {
    let mut found = [""; N];
    let mut at = 0;
    for slot in found.iter_mut() {
        let n = text[at..].find(stops).unwrap_or(text.len() - at);
        if n == 0 || !text[at + n..].starts_with(end) {
            return None;
        }
        *slot = &text[at..at + n];
        at += n + 1;
    }
    Some((found, at))
}

/// `/courses/(course-v1:[^/?#]+|[^/?#]+/[^/?#]+/[^/?#]+)/`: its leftmost match's group.
fn course_in_path(text: &str) -> Option<&str> {
    const STOPS: &[char] = &['/', '?', '#'];
    let mut from = 0;
    while let Some(at) = text[from..].find("/courses/") {
        let rest = &text[from + at + "/courses/".len()..];
        if let Some(key) = rest.strip_prefix("course-v1:") {
            if let Some((_, used)) = runs::<1>(key, STOPS, '/') {
                return Some(&rest[.."course-v1:".len() + used - 1]);
            }
        }
        if let Some((_, used)) = runs::<3>(rest, STOPS, '/') {
            return Some(&rest[..used - 1]);
        }
        from += at + 1;
    }
    None
}

/// `block-v1:([^+/]+)\+([^+/]+)\+([^+/]+)\+type@`: its leftmost match's groups.
fn course_in_block(text: &str) -> Option<[&str; 3]> {
    let mut from = 0;
    while let Some(at) = text[from..].find("block-v1:") {
        let rest = &text[from + at + "block-v1:".len()..];
        if let Some((groups, used)) = runs::<3>(rest, &['+', '/'], '+') {
            if rest[used..].starts_with("type@") {
                return Some(groups);
            }
        }
        from += at + 1;
    }
    None
}

fn text_of<'a>(value: &'a Option<Val<'_>>) -> Option<&'a str> {
    match value {
        Some(Val::Str(s)) => Some(s),
        _ => None,
    }
}

/// `events.user_of`'s id, or Err where Python would read it otherwise than here.
fn user_id_of(value: &Option<Val<'_>>) -> Result<Option<i64>, ()> {
    match value {
        Some(Val::Int(i)) => Ok(Some(*i)),
        Some(Val::Str(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i64>().map(Some).map_err(|_| ())
        }
        Some(Val::Str(s)) if !s.is_ascii() => Err(()), // Unicode digits: Python reads them
        _ => Ok(None),
    }
}

/// The common part of a line the loader can take whole here, and its text; None for a line left
/// to the per-line path (see the module's comment). `hashed` is the line's digest of
/// `digest_size(time_first)` bytes (`without_lock` makes it). An enrolment event is taken only
/// where `enrolments` is set (the caller then reads its `event` itself: `prepare`'s `noted`).
pub(crate) fn common<'a>(
    raw: &'a [u8],
    time_first: bool,
    hashed: &[u8],
    enrolments: bool,
) -> PyResult<Option<(Common, &'a str)>> {
    let Some((fields, text)) = read(raw) else {
        return Ok(None);
    };
    Ok(classify(raw, &fields, time_first, hashed, enrolments)?.map(|common| (common, text)))
}

/// `common` of a line whose picked fields `read` (or `bson::read_bson`) gave.
pub(crate) fn classify(
    raw: &[u8],
    fields: &Fields<'_>,
    time_first: bool,
    hashed: &[u8],
    enrolments: bool,
) -> PyResult<Option<Common>> {
    let Fields { picked, context } = fields;
    let [time, username, ip, event_type, name, page] = picked;
    let when = match time {
        None | Some(Val::Null) => None,
        Some(Val::Str(value)) => match isotime::parse(value) {
            Some(when) => Some(when),
            None => return Ok(None),
        },
        Some(Val::Int(_)) => return Ok(None),
    };
    let (user, course, path) = match context {
        Context::Map([user, course, path]) => (user, text_of(course), text_of(path)),
        Context::Absent | Context::Null => (&None, None, None),
    };
    let course = match course {
        Some(course) if !course.is_empty() => Cow::Borrowed(course),
        _ => course_in([text_of(page), text_of(event_type), path]),
    };
    if course.chars().count() > MAX_NAME {
        return Ok(None);
    }
    let Ok(user_id) = user_id_of(user) else {
        return Ok(None);
    };
    let username = text_of(username).unwrap_or("");
    if username.chars().count() > MAX_NAME {
        return Ok(None);
    }
    if let Some(&last) = username.as_bytes().last() {
        if !(0x21..=0x7e).contains(&last) {
            return Ok(None);
        }
    }
    let name = match (text_of(event_type), text_of(name)) {
        (Some(kind), _) if !kind.is_empty() => kind,
        (_, Some(name)) if !name.is_empty() => name,
        _ => "",
    };
    if !enrolments && is_enrolment(name) {
        return Ok(None);
    }
    // the content id (ids.content_id)
    let mut id = [0u8; 12];
    match when.map(|t| t.epoch_seconds()) {
        Some(s) if time_first && (0..END_SECONDS).contains(&s) => {
            id[..4].copy_from_slice(&(s as u32).to_be_bytes());
            id[4..].copy_from_slice(hashed);
        }
        _ if !time_first => id.copy_from_slice(hashed),
        // a time-first collection's event without a time its 4 bytes hold: the digest form
        _ => blake2b(raw, &mut id)?,
    }
    Ok(Some(Common {
        id,
        when,
        course: course.into_owned(),
        user_id,
        username: username.to_owned(),
        name: name.to_owned(),
        ip: text_of(ip).map(str::to_owned),
    }))
}

fn prepare_line(
    raw: &[u8],
    hashed: &[u8],
    line: u64,
    time_first: bool,
    tail_prefix: &str,
    enrolments: bool,
) -> PyResult<Option<Prepared>> {
    let Some((common, text)) = common(raw, time_first, hashed, enrolments)? else {
        return Ok(None);
    };
    let mut hex = String::with_capacity(24);
    for byte in common.id {
        let _ = write!(hex, "{byte:02x}");
    }
    let mut head = String::with_capacity(90);
    head.push_str("{\"_id\":{\"$oid\":\"");
    head.push_str(&hex);
    head.push_str("\"}");
    match &common.when {
        None => head.push_str(",\"time_date\":null"),
        Some(t) => {
            head.push_str(",\"time_date\":{\"$date\":\"");
            head.push_str(&t.iso_millis());
            head.push_str("Z\"}");
        }
    }
    let rest = text[1..].trim_start_matches([' ', '\t', '\r', '\n']);
    let mut tail = String::with_capacity(tail_prefix.len() + 21 + rest.len());
    tail.push_str(tail_prefix);
    let _ = write!(tail, "{line}");
    if !rest.starts_with('}') {
        tail.push(',');
    }
    tail.push_str(rest);
    Ok(Some(Prepared {
        common,
        key: format!("o{hex}"),
        head,
        tail,
    }))
}

/// The length of the digest of a line that `common` needs: 8 bytes after the time's 4 in a
/// time-first collection, else the whole 12 (`ids.content_id`).
pub(crate) fn digest_size(time_first: bool) -> usize {
    if time_first {
        8
    } else {
        12
    }
}

/// `each(index, line, digest)` of the lines, run without the interpreter lock (the other threads
/// of the ingest, which decompress and write, need it between their own calls), and the lines'
/// sizes. `digest` is the line's BLAKE2b digest of `digest_size(time_first)` bytes, made for the
/// whole block first: `hash_many` hashes 4 lines at a time where the CPU has AVX2.
pub(crate) fn without_lock<T: Send>(
    py: Python<'_>,
    lines: &Bound<'_, PyList>,
    time_first: bool,
    mut each: impl FnMut(usize, &[u8], &[u8]) -> T + Send,
) -> PyResult<(Vec<usize>, Vec<T>)> {
    // the bytes objects stay referenced here while their contents are read without the lock
    let owned: Vec<Bound<'_, PyBytes>> = lines
        .iter()
        .map(|item| item.downcast_into::<PyBytes>().map_err(PyErr::from))
        .collect::<PyResult<_>>()?;
    let raws: Vec<&[u8]> = owned.iter().map(|b| b.as_bytes()).collect();
    let sizes = raws.iter().map(|raw| raw.len()).collect();
    let size = digest_size(time_first);
    let done = py.allow_threads(|| {
        let mut params = blake2b_simd::Params::new();
        params.hash_length(size);
        let mut jobs: Vec<HashManyJob> = raws
            .iter()
            .map(|raw| HashManyJob::new(&params, raw))
            .collect();
        hash_many(jobs.iter_mut());
        raws.iter()
            .zip(&jobs)
            .enumerate()
            .map(|(i, (raw, job))| each(i, raw, job.to_hash().as_bytes()))
            .collect()
    });
    Ok((sizes, done))
}

/// The lines of a block made ready for the loader's batch. Returns `(rows, counted, numbers,
/// size, rest)`: for the lines taken whose ip is a key of `places` (the absent or null ip is the
/// key None), `rows` holds `(key, text)` (the document's key and stored text), `counted` the
/// per-file counts' tuple `(course, user_id, username, when, name, country, ip)`, `numbers` the
/// line numbers (`first` is the first line's), `size` the bytes of those lines. `rest` lists
/// `(index, ready)` for the other lines, in order: `ready` is None for a line left to the per-line
/// path, else `(key, head, tail, when, course, user_id, username, name, ip)` for a line whose ip
/// is not in `places`, whose text is `head + place + tail`.
///
/// `places` maps an ip to `(place, country, subdivision)`: `place` is the text of the `country`
/// and `subdivision` fields spliced after `time_date` (each `,"name":value`, or nothing),
/// `country` the per-file counts' value (`subdivision` is for `prepare_bson`). `tail` starts
/// with `tail_prefix`, what follows them up to `source_line`'s value. `time_first` is the
/// collection's id form (`ids.py`).
///
/// The lines are read without the interpreter lock (the other threads of the ingest, which
/// decompress and write, need it between their own calls); only the results are made with it.
/// Given `rows`, the counted events are appended to it rather than returned in `counted` (then
/// empty). Given `noted`, the enrolment events are taken too (else left to the per-line path),
/// and the indexes of those taken are appended to it (whether in `rows` or in `rest`): the
/// caller reads their `event` for `DerivedCounts.note`.
#[pyfunction]
#[pyo3(signature = (lines, first, time_first, tail_prefix, places, rows=None, noted=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare<'py>(
    py: Python<'py>,
    lines: &Bound<'py, PyList>,
    first: u64,
    time_first: bool,
    tail_prefix: &str,
    places: &Bound<'py, PyDict>,
    rows: Option<&Bound<'py, CountedRows>>,
    noted: Option<&Bound<'py, PyList>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let enrolments = noted.is_some();
    let (sizes, prepared) = without_lock(py, lines, time_first, |index, raw, hashed| {
        prepare_line(
            raw,
            hashed,
            first + index as u64,
            time_first,
            tail_prefix,
            enrolments,
        )
    })?;
    // borrowed once the lines are read: no borrow is held while the lock is released
    let mut rows = rows.map(|r| r.borrow_mut());
    let documents = PyList::empty(py);
    let counted = PyList::empty(py);
    let numbers = PyList::empty(py);
    let rest = PyList::empty(py);
    let mut size = 0;
    let mut text = String::new();
    for (index, p) in prepared.into_iter().enumerate() {
        let Some(p) = p? else {
            rest.append((index, py.None()))?;
            continue;
        };
        note(noted, index, &p.common)?;
        let ip = ip_to_python(py, &p.common.ip);
        let Some(place) = places.get_item(&ip)? else {
            rest.append((index, to_python(py, p)?))?;
            continue;
        };
        let (place, country, _): (Bound<'py, PyString>, Bound<'py, PyAny>, Bound<'py, PyAny>) =
            place.extract()?;
        text.clear();
        text.push_str(&p.head);
        text.push_str(place.to_str()?);
        text.push_str(&p.tail);
        documents.append((PyString::new(py, &p.key), PyString::new(py, &text)))?;
        match rows.as_mut() {
            Some(rows) => rows.rows.push(Row::of(p.common, country.extract()?)),
            None => counted.append(counted_to_python(py, &p.common, country, ip)?)?,
        }
        numbers.append(first + index as u64)?;
        size += sizes[index];
    }
    PyTuple::new(
        py,
        [
            documents.into_any(),
            counted.into_any(),
            numbers.into_any(),
            size.into_pyobject(py)?.into_any(),
            rest.into_any(),
        ],
    )
}

pub(crate) fn time_to_python(py: Python<'_>, when: Option<Time>) -> PyResult<Bound<'_, PyAny>> {
    Ok(match when {
        None => py.None().into_bound(py),
        Some(t) => PyDateTime::new(
            py, t.year, t.month, t.day, t.hour, t.minute, t.second, t.micro, None,
        )?
        .into_any(),
    })
}

pub(crate) fn user_id_to_python(
    py: Python<'_>,
    user_id: Option<i64>,
) -> PyResult<Bound<'_, PyAny>> {
    Ok(match user_id {
        None => py.None().into_bound(py),
        Some(i) => i.into_pyobject(py)?.into_any(),
    })
}

pub(crate) fn ip_to_python<'py>(py: Python<'py>, ip: &Option<String>) -> Bound<'py, PyAny> {
    match ip {
        None => py.None().into_bound(py),
        Some(ip) => PyString::new(py, ip).into_any(),
    }
}

/// Whether an event of this name is an enrolment event (`DerivedCounts` reads its `event`).
pub(crate) fn is_enrolment(name: &str) -> bool {
    name.starts_with(ENROLMENT)
}

/// Appends `index` to `noted` if the line taken is an enrolment event.
pub(crate) fn note(
    noted: Option<&Bound<'_, PyList>>,
    index: usize,
    common: &Common,
) -> PyResult<()> {
    match noted {
        Some(noted) if is_enrolment(&common.name) => noted.append(index),
        _ => Ok(()),
    }
}

/// The per-file counts' tuple `(course, user_id, username, when, name, country, ip)`.
pub(crate) fn counted_to_python<'py>(
    py: Python<'py>,
    c: &Common,
    country: Bound<'py, PyAny>,
    ip: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            PyString::new(py, &c.course).into_any(),
            user_id_to_python(py, c.user_id)?,
            PyString::new(py, &c.username).into_any(),
            time_to_python(py, c.when)?,
            PyString::new(py, &c.name).into_any(),
            country,
            ip,
        ],
    )
}

fn to_python(py: Python<'_>, p: Prepared) -> PyResult<Bound<'_, PyTuple>> {
    let c = &p.common;
    PyTuple::new(
        py,
        [
            PyString::new(py, &p.key).into_any(),
            PyString::new(py, &p.head).into_any(),
            PyString::new(py, &p.tail).into_any(),
            time_to_python(py, c.when)?,
            PyString::new(py, &c.course).into_any(),
            user_id_to_python(py, c.user_id)?,
            PyString::new(py, &c.username).into_any(),
            PyString::new(py, &c.name).into_any(),
            ip_to_python(py, &c.ip),
        ],
    )
}
