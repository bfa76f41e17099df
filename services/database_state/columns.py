"""Column types for a dump, inferred from its values with the contract's types as the floor.

Each batch of rows is checked column by column with one regular-expression match over the column's
values joined together (fast, C speed), so a million-row file costs a few seconds. Inference is
conservative: a column becomes INT, DOUBLE, DATE or DATETIME only if every non-NULL value is
exactly representable there; otherwise it is text wide enough for its longest value, so nothing is
ever truncated or changed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from stores.sql.base import Column, Kind

# The contract (data-contract.md): the types the original gave these columns.
INT_COLUMNS = frozenset({"id"})
DATETIME_COLUMNS = frozenset(
    {"created", "modified", "created_date", "modified_date", "last_login", "date_joined"}
)
LONG_TEXT_COLUMNS = frozenset(
    {
        "state",
        "content",
        "meta",
        "bio",
        "feedback",
        "feedback_text",
        "raw_answer",
        "explanation",
        "goals",
        "mailing_address",
    }
)

_SEP = b"\x00"
# A DOUBLE holds every decimal of at most 15 significant digits (DBL_DIG) in its normal range
# exactly enough to give it back: at most 15 digits in all (leading zeros after `0.` do not count)
# and an exponent of at most two digits. Anything else (`1e999`, `1e-999`, 30 digits) stays text.
_FLOAT = (
    rb"-?(?:"
    + b"|".join(b"[1-9][0-9]{%d}(?:\\.[0-9]{1,%d})?" % (k, 14 - k) for k in range(14))
    + rb"|[1-9][0-9]{14}|0(?:\.0{0,20}[0-9]{1,15})?)(?:[eE][-+]?[0-9]{1,2})?"
)
_WHOLE_DATETIME = (
    rb"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01]) "
    rb"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
)
_FLOAT_SAFE_INT_BYTES = 16  # "-" and 15 digits: an integer a DOUBLE holds exactly
_PATTERNS: dict[str, bytes] = {
    "int": rb"-?(?:0|[1-9][0-9]{0,17})",
    "float": _FLOAT,
    "date": rb"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])",
    "datetime": _WHOLE_DATETIME + rb"(?:\.[0-9]{1,6})?",
}
_JOINED = {
    kind: re.compile(rb"(?:%s|NULL)(?:\x00(?:%s|NULL))*" % (pattern, pattern))
    for kind, pattern in _PATTERNS.items()
}
# For `ColumnTypes.row_pattern`: the values that leave what is known of a column unchanged.
_SAFE_INT = rb"-?(?:0|[1-9][0-9]{0,14})"  # at most 16 bytes: a DOUBLE would still hold it
_SHORT_FLOAT = rb"-?(?:0|[1-9][0-9]{0,6})(?:\.[0-9]{1,8})?"  # 15 digits at most: tried first
_UNCHANGED: dict[tuple[str, ...], bytes] = {
    ("float", "int"): _SAFE_INT,
    ("int",): _PATTERNS["int"],
    ("float",): rb"%s|%s" % (_SHORT_FLOAT, _PATTERNS["float"]),
    ("date",): _PATTERNS["date"],
}
_ORDER: tuple[Kind, ...] = ("int", "float", "date", "datetime")
_STILL_POSSIBLE = {"int": {"int", "float"}, "float": {"float"}, "date": {"date"}, "datetime": {"datetime"}}
_MAX_TYPED = 48  # longer than any value the patterns above accept


@dataclass
class _Seen:
    fixed: bool = False  # the type does not depend on the data (LONGTEXT floor): no work per row
    candidates: set[str] = field(default_factory=lambda: set(_ORDER))
    max_bytes: int = 0
    fractional: bool = False
    non_null: bool = False


class ColumnTypes:
    """Accumulates what the values of each column allow."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._seen = [_Seen(fixed=_floor(name) == "longtext") for name in names]
        self._patterns: dict[bytes, re.Pattern[bytes]] = {}
        self._batches = 0

    def add_batch(self, rows: Sequence[Sequence[bytes]]) -> None:
        """Take in a batch of rows (each a list of escaped field bytes, all the right width)."""
        if not rows:
            return
        self._batches += 1
        for index, seen in enumerate(self._seen):
            if seen.fixed:
                continue
            values = list(map(itemgetter(index), rows))
            if not seen.candidates:
                longest = max(map(len, values))
                if longest > seen.max_bytes:
                    seen.max_bytes = longest
                continue
            if values.count(b"NULL") == len(values):
                # NULLs say nothing of a column's type: narrowing on a batch of them would make the
                # type depend on how the rows happen to be batched (a DATETIME column taken as INT).
                continue
            seen.non_null = True
            joined = _SEP.join(values)
            # Kinds are tried narrowest first. The patterns are nested (int within float) or
            # disjoint (numbers, dates, datetimes), so the first one that fits decides the rest.
            for kind in _ORDER:
                if kind not in seen.candidates:
                    continue
                if _JOINED[kind].fullmatch(joined):
                    seen.candidates &= _STILL_POSSIBLE[kind]
                    if (
                        kind == "int"
                        and "float" in seen.candidates
                        and max(map(len, values)) > _FLOAT_SAFE_INT_BYTES
                    ):
                        seen.candidates.discard("float")  # a later fraction must not make it DOUBLE
                    break
                seen.candidates.discard(kind)
            if "datetime" in seen.candidates and b"." in joined:
                seen.fractional = True
            if not seen.candidates:
                # Every value seen so far fit a pattern of at most _MAX_TYPED bytes, or this batch.
                seen.max_bytes = max(seen.max_bytes, _MAX_TYPED, max(map(len, values)))

    def row_pattern(self) -> re.Pattern[bytes] | None:
        """A pattern for whole lines of records (joined by LF) that would change nothing known
        about any column, or None before the first batch.

        A chunk that matches it, has (width - 1) TABs per LF-separated line and holds no backslash
        before a TAB or a LF is rows of the right width whose values `add_batch` would take in
        without any change, so it need not be split into fields. The patterns of the values are
        those of `add_batch` (or narrower: a value they refuse only means the careful path), and
        none matches a TAB or a LF; a LONGTEXT-floor column takes any bytes but TAB (a LF in it
        would show in the count of TABs), except at the end of a row.
        """
        if not self._batches:
            return None  # nothing seen yet
        fields = []
        for index, seen in enumerate(self._seen):
            last = index == len(self._seen) - 1
            if seen.fixed:
                fields.append(rb"[^\t\n]*+" if last else rb"[^\t]*+")
            elif not seen.non_null:
                fields.append(b"NULL")
            elif not seen.candidates:
                fields.append(
                    rb"[^\t\n]{0,%d}+" % seen.max_bytes if last else rb"[^\t]{0,%d}+" % seen.max_bytes
                )
            elif seen.candidates == {"datetime"}:
                pattern = _PATTERNS["datetime"] if seen.fractional else _WHOLE_DATETIME
                fields.append(rb"(?:NULL|%s)" % pattern)
            else:
                fields.append(rb"(?:NULL|%s)" % _UNCHANGED[tuple(sorted(seen.candidates))])
        row = b"\t".join(fields)
        source = rb"%s(?:\n%s)*+" % (row, row)
        compiled = self._patterns.get(source)
        if compiled is None:
            compiled = self._patterns[source] = re.compile(source)
        return compiled

    def columns(self, legacy: bool) -> tuple[list[Column], list[str]]:
        """The columns to create, and warnings where the data is below the contract's floor."""
        result: list[Column] = []
        warnings: list[str] = []
        for name, seen in zip(self.names, self._seen, strict=True):
            kind = self._kind(name, seen, legacy)
            floor = _floor(name)
            if floor in ("int", "datetime") and kind != floor:
                warnings.append(f"column {name}: values do not fit {floor.upper()}; stored as text")
            # (Whether fractions were seen matters to a DATETIME column only, and is then exact.)
            result.append(Column(name, kind, seen.max_bytes, seen.fractional and kind == "datetime"))
        return result, warnings

    @staticmethod
    def _kind(name: str, seen: _Seen, legacy: bool) -> Kind:
        floor = _floor(name)
        if floor == "longtext":
            return "longtext"
        if floor in ("int", "datetime") and floor in seen.candidates:
            return floor
        if legacy or not seen.non_null:
            return "text"
        for kind in _ORDER:
            if kind in seen.candidates:
                return kind
        return "text"


def _floor(name: str) -> Kind | None:
    if name in INT_COLUMNS:
        return "int"
    if name in DATETIME_COLUMNS:
        return "datetime"
    if name in LONG_TEXT_COLUMNS:
        return "longtext"
    return None


def null_columns(columns: Sequence[Column], legacy: bool) -> frozenset[str]:
    """Where the field `NULL` becomes SQL NULL: everywhere by default; typed columns in legacy mode."""
    if not legacy:
        return frozenset(c.name for c in columns)
    return frozenset(c.name for c in columns if c.kind not in ("text", "longtext"))
