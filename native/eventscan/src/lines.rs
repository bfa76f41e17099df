//! `split_lines`: `bytes.split(b"\n")` for `utils/lines.iter_line_blocks`, with the line ends
//! found by `memchr` (CPython compares the bytes one by one: a quarter of the read-ahead thread's
//! time on a tracking log).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// `data.split(b"\n")`: the pieces between the LFs, the one after the last LF included (empty if
/// `data` ends with one).
#[pyfunction]
pub(crate) fn split_lines<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyList>> {
    let mut pieces = Vec::with_capacity(data.len() / 512 + 1);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', data) {
        pieces.push(PyBytes::new(py, &data[start..end]));
        start = end + 1;
    }
    pieces.push(PyBytes::new(py, &data[start..]));
    PyList::new(py, pieces)
}
