//! The per-file counts of `services/clickstream/aggregates.DayCounts` and
//! `course_events.EventTypeCounts`, compiled: fed with the same `(course, user_id, username,
//! when, name, country, ip)` tuples and giving the same rows, in the same order (first seen
//! first). The Python classes use them where the module is built and keep their own code as the
//! reference (`tests/test_eventscan_counts.py` compares both). The same events also come as a
//! `CountedRows`, in which the loader keeps a batch's counted events where these counters count.

use crate::block::Common;
use crate::isotime::Time;
use foldhash::{HashMap, HashSet};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{
    PyDate, PyDateAccess, PyDateTime, PyDict, PyList, PyString, PyTimeAccess, PyTuple,
};

/// `aggregates.MAX_IPS`.
const MAX_IPS: usize = 20;
/// `course_events.MAX_EVENT_TYPE` (characters).
const MAX_EVENT_TYPE: usize = 2000;
/// `aggregates._COUNTERS`, in `Day::counters` order; `nforum` comes after them.
const COUNTERS: [&str; 4] = ["play_video", "problem_check", "showanswer", "seq_goto"];

/// (year, month, day).
type Date = (i32, u8, u8);

/// A naive datetime: its fields, and a number that orders as the datetimes do.
#[derive(Clone, Copy)]
pub(crate) struct Moment {
    date: Date,
    time: (u8, u8, u8),
    order: i64,
}

impl Moment {
    fn new(date: Date, time: (u8, u8, u8), micro: u32) -> Moment {
        let ((year, month, day), (hour, minute, second)) = (date, time);
        let days = i64::from(year) * 372 + i64::from(month) * 31 + i64::from(day);
        let seconds =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        Moment {
            date,
            time,
            order: seconds * 1_000_000 + i64::from(micro),
        }
    }

    /// The moment of a time the module read (`isotime`).
    pub(crate) fn of(t: &Time) -> Moment {
        Moment::new(
            (t.year, t.month, t.day),
            (t.hour, t.minute, t.second),
            t.micro,
        )
    }

    fn micro(&self) -> u32 {
        self.order.rem_euclid(1_000_000) as u32
    }
}

fn moment(when: &Bound<'_, PyAny>) -> PyResult<Option<Moment>> {
    if when.is_none() {
        return Ok(None);
    }
    let when = when.downcast::<PyDateTime>()?;
    Ok(Some(Moment::new(
        (when.get_year(), when.get_month(), when.get_day()),
        (when.get_hour(), when.get_minute(), when.get_second()),
        when.get_microsecond(),
    )))
}

/// An optional `str` field: None for None, an error for another type.
fn text<'a>(value: &'a Bound<'_, PyAny>) -> PyResult<Option<&'a str>> {
    if value.is_none() {
        Ok(None)
    } else {
        Ok(Some(value.downcast::<PyString>()?.to_str()?))
    }
}

/// One counted tuple, borrowed.
struct Counted<'a> {
    course: &'a str,
    user_id: Option<i64>,
    username: &'a str,
    when: Option<Moment>,
    name: &'a str,
    country: Option<&'a str>,
    ip: Option<&'a str>,
}

/// The 7 items of a counted tuple (held here, so that the strings can be borrowed from them).
fn items<'py>(row: &Bound<'py, PyAny>) -> PyResult<[Bound<'py, PyAny>; 7]> {
    let row = row.downcast::<PyTuple>()?;
    if row.len() != 7 {
        return Err(PyValueError::new_err("a counted tuple has 7 items"));
    }
    let item = |i: usize| row.get_item(i);
    Ok([
        item(0)?,
        item(1)?,
        item(2)?,
        item(3)?,
        item(4)?,
        item(5)?,
        item(6)?,
    ])
}

fn read<'a>(items: &'a [Bound<'_, PyAny>; 7]) -> PyResult<Counted<'a>> {
    let [course, user_id, username, when, name, country, ip] = items;
    Ok(Counted {
        course: course.downcast::<PyString>()?.to_str()?,
        user_id: if user_id.is_none() {
            None
        } else {
            Some(user_id.extract()?)
        },
        username: username.downcast::<PyString>()?.to_str()?,
        when: moment(when)?,
        name: name.downcast::<PyString>()?.to_str()?,
        country: text(country)?,
        // `ip` counts only as a string (`type(ip) is str`): any other value is left out
        ip: match ip.downcast::<PyString>() {
            Ok(ip) => Some(ip.to_str()?),
            Err(_) => None,
        },
    })
}

/// A part of a map key: its length, then its bytes (so that no two keys' parts run together).
fn put(key: &mut Vec<u8>, part: &[u8]) {
    key.extend_from_slice(&part.len().to_le_bytes());
    key.extend_from_slice(part);
}

fn put_date(key: &mut Vec<u8>, (year, month, day): Date) {
    key.extend_from_slice(&year.to_le_bytes());
    key.extend_from_slice(&[month, day]);
}

/// `each` of the counted events that have a time (the others count nowhere): `counted` is a list
/// of counted tuples or a `CountedRows`.
fn each_timed(counted: &Bound<'_, PyAny>, mut each: impl FnMut(&Counted, Moment)) -> PyResult<()> {
    if let Ok(rows) = counted.downcast::<CountedRows>() {
        for row in &rows.borrow().rows {
            if let Some(when) = row.when {
                each(&row.counted(), when);
            }
        }
        return Ok(());
    }
    for row in counted.downcast::<PyList>()?.iter() {
        let items = items(&row)?;
        let c = read(&items)?;
        if let Some(when) = c.when {
            each(&c, when);
        }
    }
    Ok(())
}

/// A counted tuple, owned (`CountedRows`).
pub(crate) struct Row {
    pub(crate) course: String,
    pub(crate) user_id: Option<i64>,
    pub(crate) username: String,
    pub(crate) when: Option<Moment>,
    pub(crate) name: String,
    pub(crate) country: Option<String>,
    /// None also for an ip that is not a `str` (it counts nowhere, as in `Counted`)
    pub(crate) ip: Option<String>,
}

impl Row {
    /// The row of a line the block passes took (`block::Common`), with its country.
    pub(crate) fn of(common: Common, country: Option<String>) -> Row {
        Row {
            when: common.when.as_ref().map(Moment::of),
            course: common.course,
            user_id: common.user_id,
            username: common.username,
            name: common.name,
            country,
            ip: common.ip,
        }
    }

    fn counted(&self) -> Counted<'_> {
        Counted {
            course: &self.course,
            user_id: self.user_id,
            username: &self.username,
            when: self.when,
            name: &self.name,
            country: self.country.as_deref(),
            ip: self.ip.as_deref(),
        }
    }

    fn to_python<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let when = match &self.when {
            None => py.None().into_bound(py),
            Some(m) => {
                let ((y, mo, d), (h, mi, s)) = (m.date, m.time);
                PyDateTime::new(py, y, mo, d, h, mi, s, m.micro(), None)?.into_any()
            }
        };
        PyTuple::new(
            py,
            [
                self.course.as_str().into_pyobject(py)?.into_any(),
                self.user_id.into_pyobject(py)?.into_any(),
                self.username.as_str().into_pyobject(py)?.into_any(),
                when,
                self.name.as_str().into_pyobject(py)?.into_any(),
                self.country.as_deref().into_pyobject(py)?.into_any(),
                self.ip.as_deref().into_pyobject(py)?.into_any(),
            ],
        )
    }
}

/// The counted events of a batch, kept here rather than as a tuple of Python objects each (the
/// block passes append the events they take; the loader appends the others' tuples). The
/// counters' `add_all` takes it as it takes a list of counted tuples.
#[pyclass(module = "eventscan")]
#[derive(Default)]
pub(crate) struct CountedRows {
    pub(crate) rows: Vec<Row>,
}

#[pymethods]
impl CountedRows {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Appends a counted tuple `(course, user_id, username, when, name, country, ip)`.
    fn append(&mut self, row: &Bound<'_, PyAny>) -> PyResult<()> {
        let items = items(row)?;
        let c = read(&items)?;
        self.rows.push(Row {
            course: c.course.to_owned(),
            user_id: c.user_id,
            username: c.username.to_owned(),
            when: c.when,
            name: c.name.to_owned(),
            country: c.country.map(str::to_owned),
            ip: c.ip.map(str::to_owned),
        });
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.rows.len()
    }

    /// Drops the rows at these positions (the others keep their order).
    fn drop_positions(&mut self, positions: HashSet<usize>) {
        let mut position = 0;
        self.rows.retain(|_| {
            position += 1;
            !positions.contains(&(position - 1))
        });
    }

    /// The rows whose name starts with `prefix` as counted tuples (an ip that was not a `str` is
    /// None).
    #[pyo3(signature = (prefix=""))]
    fn tuples<'py>(&self, py: Python<'py>, prefix: &str) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for row in self.rows.iter().filter(|r| r.name.starts_with(prefix)) {
            out.append(row.to_python(py)?)?;
        }
        Ok(out)
    }
}

struct Day {
    course: String,
    user_id: Option<i64>,
    date: (i32, u8, u8),
    username: String,
    nevents: i64,
    counters: [i64; 5],
    first: Moment,
    last: Moment,
    countries: Vec<String>,
    ips: Vec<String>,
}

/// `DayCounts`: per (course, user, UTC day) counts.
#[pyclass(module = "eventscan")]
#[derive(Default)]
pub(crate) struct DayCounter {
    index: HashMap<Vec<u8>, usize>,
    days: Vec<Day>,
    key: Vec<u8>,
}

#[pymethods]
impl DayCounter {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// `DayCounts.add_all`.
    fn add_all(&mut self, counted: &Bound<'_, PyAny>) -> PyResult<()> {
        each_timed(counted, |c, when| self.add(c, when))
    }

    /// `DayCounts.rows`.
    fn rows<'py>(&self, py: Python<'py>, source: &str) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let stamp = |m: &Moment| {
            let ((y, mo, d), (h, mi, s)) = (m.date, m.time);
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
        };
        for day in &self.days {
            let mut countries = day.countries.clone();
            countries.sort();
            let mut ips = day.ips.clone();
            ips.sort();
            let (y, m, d) = day.date;
            let row = PyTuple::new(
                py,
                [
                    day.course.clone().into_pyobject(py)?.into_any(),
                    day.user_id.into_pyobject(py)?.into_any(),
                    day.username.clone().into_pyobject(py)?.into_any(),
                    PyDate::new(py, y, m, d)?.into_any(),
                    day.nevents.into_pyobject(py)?.into_any(),
                    day.counters[0].into_pyobject(py)?.into_any(),
                    day.counters[1].into_pyobject(py)?.into_any(),
                    day.counters[2].into_pyobject(py)?.into_any(),
                    day.counters[3].into_pyobject(py)?.into_any(),
                    day.counters[4].into_pyobject(py)?.into_any(),
                    stamp(&day.first).into_pyobject(py)?.into_any(),
                    stamp(&day.last).into_pyobject(py)?.into_any(),
                    countries.join(",").into_pyobject(py)?.into_any(),
                    ips.join(",").into_pyobject(py)?.into_any(),
                    source.into_pyobject(py)?.into_any(),
                ],
            )?;
            out.append(row)?;
        }
        Ok(out)
    }
}

impl DayCounter {
    fn add(&mut self, c: &Counted, when: Moment) {
        if c.course.is_empty() || (c.user_id.is_none() && c.username.is_empty()) {
            return;
        }
        let keyed_name = if c.user_id.is_none() { c.username } else { "" };
        self.key.clear();
        put(&mut self.key, c.course.as_bytes());
        match c.user_id {
            Some(id) => put(&mut self.key, &id.to_le_bytes()),
            None => put(&mut self.key, b""),
        }
        put(&mut self.key, keyed_name.as_bytes());
        put_date(&mut self.key, when.date);
        let at = match self.index.get(self.key.as_slice()) {
            Some(&at) => {
                let day = &mut self.days[at];
                if day.username.is_empty() {
                    day.username = c.username.to_owned();
                }
                if when.order < day.first.order {
                    day.first = when;
                } else if when.order > day.last.order {
                    day.last = when;
                }
                at
            }
            None => {
                self.days.push(Day {
                    course: c.course.to_owned(),
                    user_id: c.user_id,
                    date: when.date,
                    username: c.username.to_owned(),
                    nevents: 0,
                    counters: [0; 5],
                    first: when,
                    last: when,
                    countries: Vec::new(),
                    ips: Vec::new(),
                });
                self.index.insert(self.key.clone(), self.days.len() - 1);
                self.days.len() - 1
            }
        };
        let day = &mut self.days[at];
        day.nevents += 1;
        if let Some(counter) = COUNTERS.iter().position(|n| *n == c.name) {
            day.counters[counter] += 1;
        } else if c.name.starts_with("edx.forum.") {
            day.counters[4] += 1;
        }
        if let Some(country) = c.country.filter(|s| !s.is_empty()) {
            if !day.countries.iter().any(|s| s == country) {
                day.countries.push(country.to_owned());
            }
        }
        if let Some(ip) = c.ip.filter(|s| !s.is_empty()) {
            if day.ips.len() < MAX_IPS && !day.ips.iter().any(|s| s == ip) {
                day.ips.push(ip.to_owned());
            }
        }
    }
}

/// `EventTypeCounts`: per (course, UTC day, event type) counts, and per course.
#[pyclass(module = "eventscan")]
#[derive(Default)]
pub(crate) struct EventTypeCounter {
    index: HashMap<Vec<u8>, usize>,
    counts: Vec<(String, Date, String, i64)>,
    courses: HashMap<String, usize>,
    per_course: Vec<(String, i64)>,
    key: Vec<u8>,
}

#[pymethods]
impl EventTypeCounter {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// `EventTypeCounts.add_all`.
    fn add_all(&mut self, counted: &Bound<'_, PyAny>) -> PyResult<()> {
        each_timed(counted, |c, when| self.add(c, when))
    }

    /// `EventTypeCounts.counts`: {(course, day, event type): events}.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (course, (y, m, d), kind, n) in &self.counts {
            out.set_item((course, PyDate::new(py, *y, *m, *d)?, kind), n)?;
        }
        Ok(out)
    }

    /// `EventTypeCounts.per_course`: {course: events}.
    fn per_course<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (course, n) in &self.per_course {
            out.set_item(course, n)?;
        }
        Ok(out)
    }
}

impl EventTypeCounter {
    fn add(&mut self, c: &Counted, when: Moment) {
        if c.course.is_empty() {
            return;
        }
        let kind = match c.name.char_indices().nth(MAX_EVENT_TYPE) {
            Some((cut, _)) => &c.name[..cut],
            None => c.name,
        };
        self.key.clear();
        put(&mut self.key, c.course.as_bytes());
        put_date(&mut self.key, when.date);
        put(&mut self.key, kind.as_bytes());
        match self.index.get(self.key.as_slice()) {
            Some(&at) => self.counts[at].3 += 1,
            None => {
                self.counts
                    .push((c.course.to_owned(), when.date, kind.to_owned(), 1));
                self.index.insert(self.key.clone(), self.counts.len() - 1);
            }
        }
        match self.courses.get(c.course) {
            Some(&at) => self.per_course[at].1 += 1,
            None => {
                self.per_course.push((c.course.to_owned(), 1));
                self.courses
                    .insert(c.course.to_owned(), self.per_course.len() - 1);
            }
        }
    }
}
