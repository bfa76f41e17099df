"""DiscussionForums: each `.mongo` forum dump becomes one collection of `discussion_forum`.

A dump is a snapshot of the course's forum, so after a load the collection holds exactly the
documents of the newest file (a post deleted on edX disappears). The file is loaded in batches into
`<name>__load` (dropped first: a crash may have left one), indexed there, and swapped in with
`replace_collection`, which keeps the indexes on both backends: readers never see a half-loaded
forum (on MongoDB and SQLite; FerretDB 1.24 cannot rename a name with a `.`, so the store copies
those there), and a restarted load simply starts again. Bad lines are rejected with their line number and
the rest loads; a file in which not one line is a document is failed and the old forum kept.

Per (course, author) counts of threads, comments and up-votes received go to
`Person_Course.forum_author_counts` for the person-course service, replacing the file's previous
rows in the transaction that marks the file done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from base_service import Context, Entry, IngestResult, Service
from core.errors import BadDataError, ConfigError, IngestorError, Interrupted, TerminalError, TransientError
from core.rejects import Rejects
from services.discussion_forums.forum import BadLine, collection_name, iter_lines, parse_line
from stores.documents.base import DocumentStore, check_name, id_key
from stores.sql.base import Cursor
from utils.paths import to_text

DATABASE = "discussion_forum"
PERSON_COURSE = "Person_Course"
COUNTS_TABLE = "forum_author_counts"
STAGING_SUFFIX = "__load"
MAX_ID = 255  # longest course_id / author_id kept in the counts table (VARCHAR(255))
MAX_VOTES = 2**31 - 1  # an up_count beyond this is not a count: its line is rejected
BIGINT = 2**63 - 1
# What the dashboards and person-course look up: a user's posts, a thread's comments, threads vs
# comments, the posts of one discussion component.
INDEXES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("author_id", 1),),
    (("comment_thread_id", 1),),
    (("_type", 1),),
    (("commentable_id", 1),),
)
COUNT_COLUMNS = (
    "discussiontable",
    "course_id",
    "author_id",
    "nposts",
    "nthreads",
    "ncomments",
    "nvotes_received",
    "source",
)


def counts_table_ddl(dialect: str) -> str:
    """CREATE TABLE for the per-author counts, the same on SQLite and MySQL but for the collation:
    MySQL's default one is case-insensitive, which would merge two ids of the primary key."""
    exact = " COLLATE utf8mb4_bin" if dialect == "mysql" else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {COUNTS_TABLE} ("
        f"discussiontable VARCHAR(120){exact} NOT NULL, "
        f"course_id VARCHAR({MAX_ID}){exact} NOT NULL, "
        f"author_id VARCHAR({MAX_ID}){exact} NOT NULL, "
        "nposts INTEGER NOT NULL, nthreads INTEGER NOT NULL, ncomments INTEGER NOT NULL, "
        "nvotes_received BIGINT NOT NULL, source TEXT NOT NULL, "
        "PRIMARY KEY (discussiontable, course_id, author_id))"
    )


@dataclass
class AuthorCounts:
    """Posts, threads, comments and up-votes received per (course_id, author_id) of one forum.

    `nposts` counts every document of the author (the person-course `nforum_posts`); documents
    without a usable `author_id` (missing, not a string or number, longer than 255) are left out
    and counted in `uncounted`. A missing `course_id` is stored as "".
    """

    counts: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    uncounted: int = 0

    def add(self, doc: dict[str, Any]) -> None:
        author, course = _text_id(doc.get("author_id")), _text_id(doc.get("course_id", ""))
        if not author or course is None:
            self.uncounted += 1
            return
        row = self.counts.get((course, author))
        if row is None:
            row = self.counts[(course, author)] = [0, 0, 0, 0]
        kind = doc.get("_type")
        row[0] += 1
        row[1] += kind == "CommentThread"
        row[2] += kind == "Comment"
        row[3] += _up_count(doc.get("votes"))

    def course_ids(self) -> set[str]:
        return {course for course, _ in self.counts}

    def rows(self, discussiontable: str, source: str) -> list[tuple[object, ...]]:
        return [
            (discussiontable, course, author, *numbers, source)
            for (course, author), numbers in sorted(self.counts.items())
        ]


def _text_id(value: object) -> str | None:
    if type(value) is int:
        return str(value)
    if isinstance(value, str) and len(value) <= MAX_ID:
        return value
    return None


def _up_count(votes: object) -> int:
    count = votes.get("up_count") if isinstance(votes, dict) else None
    if type(count) is int:
        return count
    if isinstance(count, float) and count.is_integer():
        return int(count)
    return 0


def count_problem(doc: dict[str, Any]) -> str:
    """Why a document's `votes.up_count` cannot go into the counts table (BIGINT), or ""."""
    count = _up_count(doc.get("votes"))
    if not 0 <= count <= MAX_VOTES:
        return f"votes.up_count {doc['votes']['up_count']!r} is not a count of up-votes"
    return ""


SqlWrites = Callable[[Cursor, Callable[[str, str], str]], None]


def replace_counts(discussiontable: str, rows: Sequence[tuple[object, ...]]) -> SqlWrites:
    """The `sql_writes` of a forum: its previous rows out, the new ones in (one transaction)."""

    def writes(cur: Cursor, qualify: Callable[[str, str], str]) -> None:
        table = qualify(PERSON_COURSE, COUNTS_TABLE)
        cur.execute(f"DELETE FROM {table} WHERE discussiontable = ?", (discussiontable,))
        if rows:
            marks = ", ".join("?" for _ in COUNT_COLUMNS)
            cur.executemany(f"INSERT INTO {table} ({', '.join(COUNT_COLUMNS)}) VALUES ({marks})", rows)

    return writes


@dataclass
class _Load:
    """What loading one file into the staging collection found."""

    loaded: int = 0
    counts: AuthorCounts = field(default_factory=AuthorCounts)


class DiscussionForumsService(Service):
    name = "DiscussionForums"
    batch_size = 2000  # documents per insert; between batches: progress, and a stop request is obeyed

    def wants(self, entry: Entry) -> bool:
        return entry.area == "database_state" and not entry.is_dir and entry.path.name.endswith(".mongo")

    def start(self, ctx: Context) -> None:
        """Create the per-author counts table, so that a file's completion can write into it."""
        with ctx.sql.transaction(PERSON_COURSE) as cur:
            cur.execute(counts_table_ddl(ctx.sql.dialect))

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        name = check_name(collection_name(path))
        staging = check_name(name + STAGING_SUFFIX, "staging collection")
        rejects = ctx.rejects
        assert rejects is not None, "the scheduler gives every ingest its rejects file"
        store, db = ctx.documents(), ctx.settings.document_db(DATABASE)
        store.drop_collection(db, staging)
        try:
            load = self._load(path, store, db, staging, ctx, rejects)
            ctx.check_unchanged()
            if load.loaded == 0 and rejects.count:
                raise TerminalError(
                    f"{path}: not one of its {rejects.count} line(s) is a forum document; "
                    f"the previous {db}.{name} is kept"
                )
            if any(n > BIGINT for numbers in load.counts.counts.values() for n in numbers):
                raise TerminalError(
                    f"{path}: an author's up-votes add up beyond 64 bits; the previous {db}.{name} is kept"
                )
            for keys in INDEXES:
                store.create_index(db, staging, keys)  # also creates the collection of an empty forum
            if store.count(db, staging) != load.loaded:
                raise TransientError(f"{path}: {db}.{staging} changed while loading (another worker?)")
            store.replace_collection(db, staging, name)
        except IngestorError:
            _drop_quietly(store, db, staging, ctx)
            raise
        warnings = self._warnings(path, name, load.counts, ctx)
        for warning in warnings:
            ctx.log.warning("%s", warning)
        return IngestResult(
            rows_loaded=load.loaded,
            rows_rejected=rejects.count,
            warnings=warnings,
            sql_writes=replace_counts(name, load.counts.rows(name, to_text(path))),
            attach=(PERSON_COURSE,),
        )

    def _load(
        self, path: Path, store: DocumentStore, db: str, staging: str, ctx: Context, rejects: Rejects
    ) -> _Load:
        """Read, check and insert every line into `staging`, in batches."""
        load = _Load()
        seen: dict[str, int] = {}  # _id key -> line: a repeated _id is a bad line, not a silent skip
        batch: list[tuple[int, bytes, dict[str, Any]]] = []
        done = 0
        try:
            size = max(path.stat().st_size, 1)
            limit = ctx.settings.MAX_LINE_BYTES

            def too_long(line_no: int, length: int, head: bytes) -> None:
                rejects.add(
                    line_no,
                    f"line too long ({length} bytes > MAX_LINE_BYTES {limit}); its first bytes kept",
                    head,
                )

            for line_no, raw in iter_lines(path, limit, too_long):
                done += len(raw) + 1
                try:
                    doc = parse_line(raw, line_no)
                except BadLine as exc:
                    rejects.add(line_no, exc.reason, raw)
                    continue
                problem = count_problem(doc)
                if problem:
                    rejects.add(line_no, problem, raw)
                    continue
                key = id_key(doc["_id"])
                first = seen.setdefault(key, line_no)
                if first != line_no:
                    rejects.add(line_no, f"duplicate _id (first on line {first})", raw)
                    continue
                batch.append((line_no, raw, doc))
                if len(batch) >= self.batch_size:
                    self._insert(store, db, staging, batch, load, rejects)
                    batch = []
                    ctx.progress(min(done / size, 0.99))
                    if ctx.should_stop():
                        raise Interrupted(f"{path}: stopped after line {line_no}")
        except OSError as exc:
            raise TerminalError(f"{path}: cannot be read: {exc}") from exc
        self._insert(store, db, staging, batch, load, rejects)
        ctx.progress(0.99)
        return load

    def _insert(
        self,
        store: DocumentStore,
        db: str,
        staging: str,
        batch: list[tuple[int, bytes, dict[str, Any]]],
        load: _Load,
        rejects: Rejects,
    ) -> None:
        """Insert one batch; if the store refuses a document, find it and reject its line alone.

        The staging collection was dropped first and `_id`s are unique in the batch, so a duplicate
        on the first try means someone else writes there too. In the one-by-one retry it is one of
        ours that the server took before it refused the bad one (MongoDB may have sent part of it).
        """
        if not batch:
            return
        docs = [doc for _, _, doc in batch]
        try:
            result = store.insert_many(db, staging, docs)
        except BadDataError:
            docs = []
            for line_no, raw, doc in batch:
                try:
                    store.insert_many(db, staging, [doc])
                except BadDataError as exc:
                    rejects.add(line_no, f"not storable: {exc}", raw)
                    continue
                docs.append(doc)
        else:
            if result.duplicates:
                raise TransientError(
                    f"{db}.{staging}: {result.duplicates} document(s) were already there: another "
                    "worker is loading the same forum"
                )
        load.loaded += len(docs)
        for doc in docs:
            load.counts.add(doc)

    def _warnings(self, path: Path, name: str, counts: AuthorCounts, ctx: Context) -> list[str]:
        """Facts worth a warning that do not stop the load: the registry does not know this forum, or
        expects another course in it; documents left out of the per-author counts."""
        warnings = []
        if counts.uncounted:
            warnings.append(
                f"{path}: {counts.uncounted} document(s) without a usable author_id or course_id "
                "are not in the per-author counts"
            )
        try:
            courses = ctx.courses()
        except ConfigError as exc:
            return [*warnings, f"{path}: the course registry cannot be read to check this forum: {exc}"]
        matching = [c for c in courses.courses.values() if c.discussiontable == name]
        if not matching:
            warnings.append(
                f"{path}: no course in the course registry has discussiontable {name!r}; "
                "the dashboards will not find this forum"
            )
        found = counts.course_ids()
        for course in matching:
            if found and course.mongoname not in found:
                warnings.append(
                    f"{path}: course {course.key!r} expects course_id {course.mongoname!r} in this forum, "
                    f"but its documents have {sorted(found)[:3]!r}"
                )
        return warnings


def _drop_quietly(store: DocumentStore, db: str, staging: str, ctx: Context) -> None:
    """Remove a partial staging collection after a failure; if even that fails, the next attempt
    drops it first anyway."""
    try:
        store.drop_collection(db, staging)
    except IngestorError as exc:
        ctx.log.warning("could not drop %s.%s after a failed load: %s", db, staging, exc)
