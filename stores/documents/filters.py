"""The filter language both document stores accept, and its evaluation in Python.

A filter is a dict of conditions that must all hold:

* `{"field": value}` or `{"a.b.c": value}`: equality on a (dotted) path. A path goes through lists
  of sub-documents (`a.b` looks at `b` in every element of the list `a`), and a numeric part indexes
  a list (`a.0`). A list field matches a value equal to the whole list or to one of its elements.
  `None` matches a null or missing field. Numbers compare by value (1 == 1.0), booleans are not
  numbers, documents compare field by field in order.
* `{"field": {op: value, ...}}` with ops `$in` (a list), `$exists` (bool), `$gt`, `$lt`.
  Comparisons only match values of the same kind as the operand (numbers, strings, datetimes,
  ObjectIds ...), as in MongoDB; strings compare by code point.
* `{"$or": [filter, ...]}`.

That is what the services ask (a file's events, the ids of a batch, events not yet backfilled);
anything else raises TerminalError on both backends. MongoDB evaluates filters itself. For the
SQLite backend this module also evaluates them in Python (`matches`), translates them to SQL that
can use indexes (`to_sql`, at the end), compares values as BSON does (null < numbers < strings <
documents < lists < binary < ObjectId < booleans < datetimes), and applies `$set`.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId

from core.errors import TerminalError
from stores.documents.base import FIELD_PART, Document, ext_json_scalar, normalize_datetime

FIELD_OPS = frozenset({"$in", "$exists", "$gt", "$lt"})
RANGE_OPS: dict[str, Callable[[Any, Any], bool]] = {"$gt": operator.gt, "$lt": operator.lt}
_NULL_KEY = (1, 0)
_NAN_KEY = (2, 0, 0)


def _normalize(value: Any) -> Any:
    if isinstance(value, datetime):
        return normalize_datetime(value)
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    return value


def validate_filter(filt: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a filter against the language above and return it with datetimes normalized."""
    if filt is None:
        return {}
    if not isinstance(filt, Mapping):
        raise TerminalError(f"a filter must be a dict, got {filt!r}")
    out: dict[str, Any] = {}
    for key, cond in filt.items():
        if key == "$or":
            if not isinstance(cond, list | tuple) or not cond:
                raise TerminalError(f"{key} needs a non-empty list of filters")
            out[key] = [validate_filter(sub) for sub in cond]
        elif not isinstance(key, str) or not key or key.startswith("$"):
            raise TerminalError(f"unsupported filter key {key!r}")
        elif is_operator_dict(cond):
            out[key] = {op: _check_operand(op, arg) for op, arg in cond.items()}
        else:
            out[key] = _normalize(cond)
    return out


def is_operator_dict(cond: Any) -> bool:
    """True for `{"$gt": 3}`, False for a plain value; a dict mixing both is an error."""
    if not isinstance(cond, dict) or not cond:
        return False
    ops = [k.startswith("$") for k in cond]
    if all(ops):
        return True
    if any(ops):
        raise TerminalError(f"a condition cannot mix operators and fields: {cond!r}")
    return False


def _check_operand(op: str, arg: Any) -> Any:
    if op not in FIELD_OPS:
        raise TerminalError(f"unsupported filter operator {op}")
    if op == "$in":
        if not isinstance(arg, list | tuple | set | frozenset):
            raise TerminalError(f"{op} needs a list, got {arg!r}")
        return [_normalize(v) for v in arg]
    if op == "$exists":
        return bool(arg)
    return _normalize(arg)


def resolve(node: Any, parts: list[str], i: int = 0) -> list[Any]:
    """The values found at a dotted path, walking into lists of sub-documents as MongoDB does."""
    if i == len(parts):
        return [node]
    key = parts[i]
    if isinstance(node, dict):
        return resolve(node[key], parts, i + 1) if key in node else []
    if not isinstance(node, list):
        return []
    out: list[Any] = []
    if key.isdigit() and int(key) < len(node):
        out.extend(resolve(node[int(key)], parts, i + 1))
    for element in node:
        if isinstance(element, dict):
            out.extend(resolve(element, parts, i))
    return out


def has_list(doc: Any, parts: list[str]) -> bool:
    """Whether the path or one of its prefixes holds a list in this document."""
    node = doc
    for part in parts:
        if isinstance(node, list):
            return True
        if not isinstance(node, dict):
            return False
        node = node.get(part)
    return isinstance(node, list)


def set_path(doc: Document, path: str, value: Any) -> None:
    """MongoDB's `$set` of one (dotted) field: missing parents become documents."""
    parts = path.split(".")
    node: Any = doc
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise TerminalError(f"cannot set {path!r}: a parent field is not a document")
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    else:
        raise TerminalError(f"cannot set {path!r}: a parent field is not a document")


def bson_key(value: Any) -> tuple[Any, ...]:
    """A sort key that orders values as BSON does; equal keys mean equal values for MongoDB."""
    if value is None:
        return _NULL_KEY
    if isinstance(value, bool):
        return (8, value)
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return _NAN_KEY  # NaN sorts below every number
        return (2, 1, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, dict):  # pair by pair: the value's kind, then the name, then the value
        return (4, tuple((key[0], k, key) for k, key in ((k, bson_key(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return (5, tuple(bson_key(v) for v in value))
    if isinstance(value, bytes):
        return (6, len(value), value)  # BSON compares binary data by length first
    if isinstance(value, ObjectId):
        return (7, value.binary)
    if isinstance(value, datetime):
        return (9, normalize_datetime(value))
    return (10, repr(value))


def _eq_match(values: list[Any], target: Any) -> bool:
    if not values:
        return target is None
    key = bson_key(target)
    for value in values:
        if bson_key(value) == key:
            return True
        if isinstance(value, list) and any(bson_key(e) == key for e in value):
            return True
    return False


def _range_match(values: list[Any], op: str, target: Any) -> bool:
    compare = RANGE_OPS[op]
    key = bson_key(target)
    for value in values:
        candidates = [*value, value] if isinstance(value, list) else [value]
        for candidate in candidates:
            ckey = bson_key(candidate)
            if ckey[0] != key[0] or (_NAN_KEY in (ckey, key) and ckey != key):
                continue  # other kinds never compare; NaN only compares with NaN
            if compare(ckey, key):
                return True
    return False


def _field_match(doc: Mapping[str, Any], path: str, cond: Any) -> bool:
    values = resolve(doc, path.split("."))
    if not is_operator_dict(cond):
        return _eq_match(values, cond)
    for op, arg in cond.items():
        if op == "$in":
            ok = any(_eq_match(values, a) for a in arg)
        elif op == "$exists":
            ok = bool(values) == arg
        else:
            ok = _range_match(values, op, arg)
        if not ok:
            return False
    return True


def matches(doc: Mapping[str, Any], filt: Mapping[str, Any]) -> bool:
    """Whether a document satisfies a filter already checked by `validate_filter`."""
    for key, cond in filt.items():
        if key == "$or":
            if not any(matches(doc, sub) for sub in cond):
                return False
        elif not _field_match(doc, key, cond):
            return False
    return True


# --- translation to SQL for the SQLite backend --------------------------------------------------
#
# `to_sql` turns a filter into a WHERE clause over `doc` (JSON text) and `id` (the _id key), plus a
# flag saying whether that clause is exact. Each condition carries a json_type guard so that SQL's
# loose typing never matches what MongoDB would not (1 vs true vs "1"). SQL cannot see inside lists,
# so on a path not known to be list-free the clause is widened with "or some part of the path is a
# list" and Python decides; known list-free paths are those of non-multikey indexes.

SqlFilter = tuple[str | None, list[Any], bool]
_NUMBER = "IN ('integer', 'real')"
_SQL_OPS = {"$gt": ">", "$lt": "<"}


def json_path(parts: Sequence[str]) -> str:
    """The SQL literal of a JSON path, `'$."context"."course_id"'` (parts already validated)."""
    return "'$" + "".join(f'."{p}"' for p in parts) + "'"


def list_sql(parts: Sequence[str]) -> list[str]:
    """Conditions true when the path or one of its prefixes holds a list."""
    return [f"json_type(\"doc\", {json_path(parts[:i])}) = 'array'" for i in range(1, len(parts) + 1)]


def known_paths(index_keys: Iterable[Sequence[tuple[str, int]]]) -> set[str]:
    """Paths (and their prefixes) that never hold a list: those of non-multikey indexes."""
    out: set[str] = set()
    for keys in index_keys:
        for path, _ in keys:
            parts = path.split(".")
            if not any(p.isdigit() for p in parts):
                out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def _literal(value: Any) -> tuple[str, Any] | None:
    """(json_type test, bound value) for a value SQL can compare exactly, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return (_NUMBER, value) if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return (_NUMBER, value) if math.isfinite(value) else None
    if isinstance(value, str):
        return ("= 'text'", value)
    scalar = ext_json_scalar(value)
    if scalar is not None:
        return ("= 'object'", json.dumps(scalar, separators=(",", ":")))
    return None


def _eq_sql(e: str, t: str, values: Iterable[Any]) -> tuple[str, list[Any]] | None:
    clauses: list[str] = []
    groups: dict[str, list[Any]] = {}
    for value in values:
        if value is None:
            clauses.append(f"({t} IS NULL OR {t} = 'null')")
        elif isinstance(value, bool):
            clauses.append(f"{t} = '{'true' if value else 'false'}'")
        elif (lit := _literal(value)) is not None:
            groups.setdefault(lit[0], []).append(lit[1])
        else:
            return None
    for test, vals in groups.items():
        clauses.append(f"({t} {test} AND {e} IN ({', '.join('?' * len(vals))}))")
    params = [v for vals in groups.values() for v in vals]
    return ("(" + " OR ".join(clauses) + ")" if clauses else "0"), params


def _range_sql(e: str, t: str, op: str, value: Any) -> tuple[str, list[Any]] | None:
    lit = _literal(value)
    if lit is None:
        return None
    test, bound = lit
    sql = f"({t} {test} AND {e} {_SQL_OPS[op]} ?"
    if test != "= 'object'":
        return sql + ")", [bound]
    prefix = bound[: bound.index(':"') + 2]  # keep to the same kind: '{"$date":"' ... '{"$date":"~'
    if op == "$gt":
        return sql + f" AND {e} < ?)", [bound, prefix + "~"]
    return sql + f" AND {e} > ?)", [bound, prefix]


def _id_sql(ops: list[tuple[str, Any]], id_key: Callable[[Any], str]) -> SqlFilter:
    clauses: list[str] = []
    params: list[Any] = []
    exact = True
    for op, arg in ops:
        if op == "$exists":
            if not arg:
                clauses.append("0")
            continue
        if op not in ("$eq", "$in"):
            exact = False
            continue
        try:
            keys = [id_key(v) for v in ([arg] if op == "$eq" else arg)]
        except (TypeError, ValueError, OverflowError):  # not a storable _id: let Python decide
            exact = False
            continue
        clauses.append(f"id IN ({', '.join('?' * len(keys))})" if keys else "0")
        params.extend(keys)
    return " AND ".join(clauses) or None, params, exact


def _field_sql(path: str, cond: Any, known: set[str], id_key: Callable[[Any], str]) -> SqlFilter:
    ops = list(cond.items()) if is_operator_dict(cond) else [("$eq", cond)]
    if path == "_id":
        return _id_sql(ops, id_key)
    parts = path.split(".")
    if not all(FIELD_PART.fullmatch(p) and not p.isdigit() for p in parts):
        return None, [], False
    e = f'json_extract("doc", {json_path(parts)})'
    t = f'json_type("doc", {json_path(parts)})'
    clauses: list[str] = []
    params: list[Any] = []
    exact = True
    for op, arg in ops:
        got: tuple[str, list[Any]] | None = None
        if op in ("$eq", "$in"):
            got = _eq_sql(e, t, [arg] if op == "$eq" else arg)
        elif op == "$exists":
            got = (f"{t} IS {'NOT ' if arg else ''}NULL", [])
        elif op in _SQL_OPS:
            got = _range_sql(e, t, op, arg)
        if got is None:
            exact = False
        else:
            clauses.append(got[0])
            params.extend(got[1])
    if path in known:
        return " AND ".join(clauses) or None, params, exact
    if not clauses:
        return None, [], False
    return f"({' AND '.join(clauses)} OR {' OR '.join(list_sql(parts))})", params, False


def to_sql(filt: Mapping[str, Any], known: set[str], id_key: Callable[[Any], str]) -> SqlFilter:
    """(WHERE clause or None, parameters, exact?) for a filter checked by `validate_filter`.

    The clause always selects a superset of the matching rows; when `exact` is true it selects
    exactly them and Python need not look at the documents.
    """
    clauses: list[str] = []
    params: list[Any] = []
    exact = True
    for key, cond in filt.items():
        if key == "$or":
            subs = [to_sql(sub, known, id_key) for sub in cond]
        else:
            subs = [_field_sql(key, cond, known, id_key)]
        if key == "$or":
            if any(sql is None and ok for sql, _, ok in subs):
                continue  # one branch matches everything
            exact = exact and all(ok for _, _, ok in subs)
            if all(sql is not None for sql, _, _ in subs):
                clauses.append(" OR ".join(f"({sql})" for sql, _, _ in subs))
                params.extend(p for _, sub_params, _ in subs for p in sub_params)
            continue
        for sql, sub_params, ok in subs:
            exact = exact and ok
            if sql is not None:
                clauses.append(sql)
                params.extend(sub_params)
    return " AND ".join(f"({c})" for c in clauses) or None, params, exact
