"""File paths whose bytes are not UTF-8, end to end.

Python gives such a name as text with each undecodable byte kept as a lone surrogate
(`surrogateescape`: the byte 0xff becomes U+DCFF), and `open`, `os.stat` and friends take it back
unchanged. Neither a UTF-8 database column, a BSON string nor a UTF-8 log can hold a lone surrogate,
so a path is written in one of two forms:

* `display(path)`: every undecodable byte as `\\xff` (another lone surrogate as `\\udNNN`), the rest
  as it is. For people: the tracking table's `meta`, error texts, logs. Not reversible (a name may
  hold a real backslash), so never read back as a path.
* `to_text(path)`: the path itself when it is UTF-8 (every edX name), else the Python literal of
  its bytes, `b'/data/x\\xff.log'`. Reversible with `from_text`: the tracking table's `path`, a
  tracking-log event's `source_file`, the per-day tables' `source_file`. The daemon's paths are
  absolute (settings make them so), so a path never begins with `b'` or `b"` by itself.
"""

from __future__ import annotations

import ast
import os
import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte the file system's decoding could not read
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def display(text: str | os.PathLike[str]) -> str:
    """`text` (a path or a message naming one) fit for UTF-8: lone surrogates written as escapes."""
    value = os.fspath(text)
    return _SURROGATE.sub(_escape, value) if _SURROGATE.search(value) else value


def to_text(path: str | os.PathLike[str]) -> str:
    """The stored form of `path`: itself if UTF-8, else the literal of its bytes (see above)."""
    value = os.fspath(path)
    if not _SURROGATE.search(value):
        return value
    return repr(os.fsencode(value))


def from_text(text: str) -> str:
    """The path `to_text` was given (with undecodable bytes as surrogates, as `open` takes them)."""
    if len(text) > 2 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            raw = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(raw, bytes):
            return os.fsdecode(raw)
    return text
