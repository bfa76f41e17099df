"""A generator of large, realistic, entirely invented edX data packages (`database_state` part).

    python -m bench.generate OUT_DIR --studentmodule-rows 1000000 [--users 50000] [--courses 1] [--seed 42]

writes `OUT_DIR/database_state/<date>/` and a `latest` link to it. Per course:

* `<org>-<course>-<run>-courseware_studentmodule-prod-analytics.sql`: `--studentmodule-rows` rows in the
  pipeline's format (shared docs, edx-data-package.md 2.1-2.3): Python 2 csv `mysqlpipe` dialect, so
  the JSON `state` has its backslashes doubled, a raw TAB in a value is written as backslash + TAB
  (~0.1% of the rows) and a raw LF as backslash + LF, continuing the record on the next physical line
  (~0.05%); `NULL` for SQL NULL; datetimes with and without `.ffffff`.
* `auth_user`, `auth_userprofile` and `student_courseenrollment` files for the users enrolled in the
  course, in the Python-era escaping (two-character `\\n`, `\\t`, `\\\\`).

Everything is drawn from `random.Random` seeded from `--seed`, so one seed always gives the same
bytes; files are written in chunks, so memory stays constant whatever the number of rows. The
people, courses and answers are made up (user names like `kalorim1042`, `@example.com` addresses).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

STUDENTMODULE_HEADER = (
    "id",
    "module_type",
    "module_id",
    "student_id",
    "state",
    "grade",
    "created",
    "modified",
    "max_grade",
    "done",
    "course_id",
)
AUTH_USER_HEADER = (
    "id",
    "username",
    "first_name",
    "last_name",
    "email",
    "password",
    "is_staff",
    "is_active",
    "is_superuser",
    "last_login",
    "date_joined",
    "status",
    "email_key",
    "avatar_type",
    "country",
    "show_country",
    "date_of_birth",
    "interesting_tags",
    "ignored_tags",
    "email_tag_filter_strategy",
    "display_tag_filter_strategy",
    "consecutive_days_visit_count",
)
PROFILE_HEADER = (
    "id",
    "user_id",
    "name",
    "language",
    "location",
    "meta",
    "courseware",
    "gender",
    "mailing_address",
    "year_of_birth",
    "level_of_education",
    "goals",
    "country",
    "city",
    "bio",
    "profile_image_uploaded_at",
)
ENROLLMENT_HEADER = ("id", "user_id", "course_id", "created", "is_active", "mode")

DEFAULT_DATE = "2024-01-07"
FIRST_USER_ID = 1001
CHUNK_ROWS = 5000

# Share of each module type among the studentmodule rows (problems dominate, as in real courses).
MODULE_MIX: tuple[tuple[str, float], ...] = (
    ("problem", 0.45),
    ("sequential", 0.22),
    ("video", 0.15),
    ("chapter", 0.10),
    ("html", 0.05),
    ("course", 0.03),
)
ESCAPED_TAB_RATE = 0.001  # rows whose state holds a raw TAB (written as backslash + TAB)
CONTINUATION_RATE = 0.0005  # rows whose state holds a raw LF (backslash + LF: a continuation line)

# Placeholders that json.dumps writes as these 6-character escapes; swapped for the raw characters.
_RAW_TAB = "\x01"
_RAW_LF = "\x02"
_RAW_TAB_JSON = "\\u0001"
_RAW_LF_JSON = "\\u0002"

_SYLLABLES = (
    "ka", "lo", "ri", "ma", "te", "su", "vin", "da", "no", "el", "ar", "fe", "zu", "po", "li", "ne",
    "ta", "mo", "re", "si", "go", "bi", "ul", "yo",
)  # fmt: skip
_WORDS = (
    "energy", "mass", "velocity", "friction", "enzyme", "protein", "matrix", "vector", "gradient",
    "entropy", "photon", "market", "demand", "supply", "theorem", "proof", "river", "climate",
    "carbon", "neuron", "signal", "voltage", "current", "because", "therefore", "the", "a", "of",
    "is", "increases", "decreases", "constant", "café", "naïve", "Straße", "ñandú", "東京", "Привет",
    "π≈3.14", "\u03b1-helix",
)  # fmt: skip
_FORMULAS = ("m*g*h", "sqrt(x^2+y^2)", "1/2*m*v^2", "(a+b)/2", "2*pi*r", "e^(-k*t)", "x*y/z")
_COUNTRIES = ("AU", "US", "IN", "GB", "BR", "CN", "DE", "FR", "MX", "NG", "CA", "ES", "EG", "JP", "")
_LANGUAGES = ("English", "Spanish", "French", "Hindi", "Mandarin", "German", "Portuguese", "")
_EDUCATION = ("p", "m", "b", "a", "hs", "jhs", "el", "none", "other", "NULL")
_MODES = (("honor", 0.45), ("audit", 0.40), ("verified", 0.15))


@dataclass(frozen=True)
class Course:
    """An invented course run; `new_style` picks `course-v1:`/`block-v1:` ids over `Org/Course/Run`/`i4x://`."""

    org: str
    number: str
    run: str
    new_style: bool = True
    start: datetime = datetime(2023, 9, 4)
    days: int = 120

    @property
    def course_id(self) -> str:
        if self.new_style:
            return f"course-v1:{self.org}+{self.number}+{self.run}"
        return f"{self.org}/{self.number}/{self.run}"

    @property
    def file_prefix(self) -> str:
        """The course part of the file names, e.g. `BenchX-DATA101x-1T2024`."""
        return f"{self.org}-{self.number}-{self.run}"

    def module_id(self, kind: str, block: str) -> str:
        if self.new_style:
            return f"block-v1:{self.org}+{self.number}+{self.run}+type@{kind}+block@{block}"
        return f"i4x://{self.org}/{self.number}/{kind}/{block}"

    def input_prefix(self, block: str) -> str:
        """The prefix of a problem's input ids (`<block>_2_1` or `i4x-Org-Num-problem-<block>_2_1`)."""
        if self.new_style:
            return block
        return f"i4x-{self.org}-{self.number}-problem-{block}"


DEFAULT_COURSE = Course("BenchX", "DATA101x", "1T2024")


def course_for(index: int) -> Course:
    """The `index`-th invented course of a package (even: new-style ids, odd: 2014-style ids)."""
    if index == 0:
        return DEFAULT_COURSE
    orgs = ("BenchX", "SynthU", "MockTechX", "ExampleU")
    new_style = index % 2 == 0
    if new_style:
        return Course(orgs[index % 4], f"SIM{100 + index}x", f"{1 + index % 3}T2024")
    return Course(
        orgs[index % 4], f"SIM{100 + index}x", f"{2014}_T{1 + index % 3}", False, datetime(2014, 2, 3)
    )


@dataclass(frozen=True)
class Problem:
    block: str
    inputs: tuple[str, ...]  # answer kind of each input
    partial_credit: bool


@dataclass(frozen=True)
class Catalogue:
    """The blocks of a course, by module type."""

    blocks: dict[str, tuple[str, ...]]
    problems: tuple[Problem, ...]


def _hex32(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def build_catalogue(course: Course, rng: random.Random) -> Catalogue:
    """A plausible course outline: chapters of sequentials holding problems, videos and html."""
    blocks: dict[str, list[str]] = {k: [] for k, _ in MODULE_MIX}
    blocks["course"].append("course" if course.new_style else course.run)
    problems: list[Problem] = []
    kinds = ("choice", "choice", "choice", "multi", "numeric", "numeric", "text", "formula", "jsinput")
    for _ in range(rng.randint(10, 16)):
        blocks["chapter"].append(_hex32(rng))
        for _ in range(rng.randint(3, 7)):
            blocks["sequential"].append(_hex32(rng))
            for _ in range(rng.randint(1, 5)):
                width = rng.choices((1, 2, 3), (0.72, 0.25, 0.03) if course.new_style else (0.8, 0.2, 0.0))[0]
                problems.append(
                    Problem(_hex32(rng), tuple(rng.choice(kinds) for _ in range(width)), rng.random() < 0.03)
                )
            blocks["video"].extend(_hex32(rng) for _ in range(rng.randint(0, 3)))
            blocks["html"].extend(_hex32(rng) for _ in range(rng.randint(0, 2)))
    blocks["problem"] = [p.block for p in problems]
    if not blocks["video"]:
        blocks["video"].append(_hex32(rng))
    if not blocks["html"]:
        blocks["html"].append(_hex32(rng))
    return Catalogue({k: tuple(v) for k, v in blocks.items()}, tuple(problems))


def escape_pipeline(value: str) -> str:
    """courseware_studentmodule's writer: `\\` doubled, raw TAB and LF preceded by a backslash."""
    value = value.replace("\\", "\\\\")
    if "\t" in value:
        value = value.replace("\t", "\\\t")
    if "\n" in value:
        value = value.replace("\n", "\\\n")
    return value


def escape_python_era(value: str) -> str:
    """The Python-era writer of the other tables: two-character escapes, NUL stripped."""
    return (
        value.replace("\\", "\\\\")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\0", "")
    )


def format_datetime(moment: datetime) -> str:
    """`str(datetime)`: `.ffffff` only when the microsecond is not zero."""
    return str(moment)


def _text_answer(rng: random.Random, special: str) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 8))]
    if special:
        words.insert(rng.randint(0, len(words)), special)
    return " ".join(words)


def _answer(kind: str, rng: random.Random, special: str) -> object:
    if kind == "choice":
        return f"choice_{rng.randint(0, 4)}"
    if kind == "multi":
        return [f"choice_{i}" for i in sorted(rng.sample(range(5), rng.randint(1, 3)))]
    if kind == "numeric":
        return str(round(rng.uniform(-100, 1000), rng.choice((0, 1, 2, 3))))
    if kind == "formula":
        return rng.choice(_FORMULAS)
    if kind == "jsinput":
        inner = {"selected": sorted(rng.sample(range(8), rng.randint(1, 3))), "zoom": rng.randint(1, 4)}
        return json.dumps({"answer": _text_answer(rng, ""), "state": json.dumps(inner)})
    return _text_answer(rng, special)


def problem_state(
    course: Course, problem: Problem, rng: random.Random, moment: datetime, special: str = ""
) -> tuple[str, str, str]:
    """(state JSON as stored in the database, grade, max_grade) of one learner on one problem.

    `special` (a raw TAB or LF) is put into a free-text answer; the JSON then holds that raw
    character, as a value that did not go through json.dumps would.
    """
    prefix = course.input_prefix(problem.block)
    keys = [f"{prefix}_{i + 2}_1" for i in range(len(problem.inputs))]
    seed = rng.randint(1, 100) if rng.random() < 0.3 else 1
    input_state: dict[str, dict[str, object]] = {k: {} for k in keys}
    if not special and rng.random() < 0.1:
        return json.dumps({"seed": seed, "input_state": input_state}), "NULL", "NULL"
    answers: dict[str, object] = {}
    correct_map: dict[str, dict[str, object]] = {}
    score = 0.0
    for n, (key, kind) in enumerate(zip(keys, problem.inputs, strict=True)):
        placeholder = ""
        if special and n == 0:
            placeholder = _RAW_TAB if special == "\t" else _RAW_LF
        answers[key] = _answer("text" if placeholder else kind, rng, placeholder)
        right = rng.random() < 0.62
        score += 1 if right else 0
        correct_map[key] = {
            "hint": "",
            "hintmode": None,
            "correctness": "correct" if right else "incorrect",
            "msg": "",
            "npoints": None,
            "queuestate": None,
        }
    state: dict[str, object] = {"correct_map": correct_map, "input_state": input_state}
    if course.new_style:
        state["last_submission_time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    state.update(attempts=rng.randint(1, 3), seed=seed, done=True, student_answers=answers)
    text = json.dumps(state)
    if special:
        text = text.replace(_RAW_TAB_JSON, "\t").replace(_RAW_LF_JSON, "\n")
    max_grade = len(problem.inputs)
    if problem.partial_credit:
        max_grade *= 2
        score = score * 2 - (0.5 if score and rng.random() < 0.5 else 0)
    grade = str(int(score)) if score == int(score) else str(score)
    return text, grade, str(max_grade)


def _other_state(kind: str, rng: random.Random, course: Course) -> str:
    if kind in ("course", "chapter", "sequential"):
        return f'{{"position": {rng.randint(1, 7)}}}'
    if kind == "video":
        position = f"00:{rng.randint(0, 14):02d}:{rng.randint(0, 59):02d}"
        if not course.new_style or rng.random() < 0.4:
            return json.dumps({"saved_video_position": position})
        return json.dumps(
            {
                "speed": rng.choice((0.75, 1.0, 1.25, 1.5, 2.0)),
                "saved_video_position": position,
                "transcript_language": "en",
            }
        )
    return "{}"


def is_enrolled(user_index: int, course_index: int, courses: int) -> bool:
    """Whether user `user_index` takes course `course_index`: all of them with one course, ~60% else."""
    if courses <= 1:
        return True
    mixed = (user_index * 2654435761 + course_index * 40503 + 12345) & 0xFFFFFFFF
    return (mixed >> 7) % 10 < 6


def _pick_student(rng: random.Random, users: int, course_index: int, courses: int) -> int:
    while True:
        # Skewed towards a core of active learners, as studentmodule rows are.
        index = min(int(users * rng.random() ** 1.6), users - 1)
        if is_enrolled(index, course_index, courses):
            return index


def _weighted_kind(draw: float) -> str:
    total = 0.0
    for kind, share in MODULE_MIX:
        total += share
        if draw < total:
            return kind
    return MODULE_MIX[0][0]


def _studentmodule_lines(
    course: Course, rows: int, seed: int, users: int, course_index: int, courses: int
) -> Iterator[str]:
    rng = random.Random(seed * 1_000_003 + course_index)
    catalogue = build_catalogue(course, rng)
    window = course.days * 86400
    row_id = rng.randint(1_000_000, 90_000_000)
    for _ in range(rows):
        row_id += 1 if rng.random() < 0.9 else rng.randint(2, 50)
        draw = rng.random()
        special = ""
        if draw < ESCAPED_TAB_RATE:
            special = "\t"
        elif draw < ESCAPED_TAB_RATE + CONTINUATION_RATE:
            special = "\n"
        kind = "problem" if special else _weighted_kind(rng.random())
        created = course.start + timedelta(seconds=rng.randrange(window))
        if rng.random() < 0.45:
            created = created.replace(microsecond=rng.randint(1, 999_999))
        modified = created
        if rng.random() < 0.7:
            modified = created + timedelta(seconds=rng.randrange(1, 14 * 86400))
            if rng.random() < 0.45:
                modified = modified.replace(microsecond=rng.randint(0, 999_999))
        grade = max_grade = "NULL"
        if kind == "problem":
            problem = rng.choice(catalogue.problems)
            block = problem.block
            state, grade, max_grade = problem_state(course, problem, rng, modified, special)
        else:
            block = rng.choice(catalogue.blocks[kind])
            state = _other_state(kind, rng, course)
        student = FIRST_USER_ID + _pick_student(rng, users, course_index, courses)
        yield (
            f"{row_id}\t{kind}\t{course.module_id(kind, block)}\t{student}\t{escape_pipeline(state)}\t"
            f"{grade}\t{created}\t{modified}\t{max_grade}\tna\t{course.course_id}\n"
        )


def _write_lines(path: Path, header: Sequence[str], lines: Iterator[str]) -> int:
    """Write the header and the lines in chunks (constant memory); returns the number of records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        out.write("\t".join(header) + "\n")
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= CHUNK_ROWS:
                _flush(out, chunk)
                count += len(chunk)
                chunk = []
        _flush(out, chunk)
        count += len(chunk)
    os.replace(tmp, path)
    return count


def _flush(out: TextIO, chunk: list[str]) -> None:
    if chunk:
        out.write("".join(chunk))


def write_studentmodule(
    path: Path | str,
    rows: int,
    seed: int = 42,
    *,
    course: Course = DEFAULT_COURSE,
    users: int = 50_000,
    course_index: int = 0,
    courses: int = 1,
) -> None:
    """Write a `courseware_studentmodule` file of `rows` records (plus the header) to `path`."""
    if rows < 0 or users < 1:
        raise ValueError("rows must be >= 0 and users >= 1")
    _write_lines(
        Path(path),
        STUDENTMODULE_HEADER,
        _studentmodule_lines(course, rows, seed, users, course_index, courses),
    )


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


@dataclass(frozen=True)
class _Person:
    user_id: int
    username: str
    first: str
    last: str
    joined: datetime
    last_login: datetime


def _person(seed: int, index: int) -> _Person:
    """One invented user, the same in every course file (drawn from its own seeded generator)."""
    rng = random.Random(seed * 7_919 + index * 104_729 + 17)
    first, last = _name(rng), _name(rng)
    joined = datetime(2013, 1, 1) + timedelta(seconds=rng.randrange(11 * 365 * 86400))
    login = joined + timedelta(
        seconds=rng.randrange(90 * 86400), microseconds=rng.choice((0, rng.randrange(10**6)))
    )
    user_id = FIRST_USER_ID + index
    return _Person(user_id, f"{first.lower()}{last[0].lower()}{user_id}", first, last, joined, login)


def _tsv(values: Sequence[str]) -> str:
    return "\t".join(values) + "\n"


def _enrolled(users: int, course_index: int, courses: int) -> Iterator[int]:
    return (i for i in range(users) if is_enrolled(i, course_index, courses))


def _auth_user_lines(seed: int, users: int, course_index: int, courses: int) -> Iterator[str]:
    for index in _enrolled(users, course_index, courses):
        p = _person(seed, index)
        yield _tsv(
            (
                str(p.user_id),
                p.username,
                p.first,
                p.last,
                f"{p.username}@example.com",
                "",
                "0",
                "1",
                "0",
                format_datetime(p.last_login),
                format_datetime(p.joined),
                "",
                "NULL",
                "",
                "",
                "0",
                "NULL",
                "",
                "",
                "1",
                "0",
                "0",
            )
        )


def _profile_lines(seed: int, users: int, course_index: int, courses: int) -> Iterator[str]:
    for index in _enrolled(users, course_index, courses):
        p = _person(seed, index)
        rng = random.Random(seed * 31 + index)
        goals = "NULL"
        if rng.random() < 0.3:
            goals = escape_python_era(
                " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))
                + ("\n" + " ".join(rng.choice(_WORDS) for _ in range(4)) if rng.random() < 0.3 else "")
            )
        yield _tsv(
            (
                str(p.user_id),
                str(p.user_id),
                f"{p.first} {p.last}",
                rng.choice(_LANGUAGES),
                "",
                "",
                "course.xml",
                rng.choice(("m", "f", "o", "NULL", "")),
                "NULL",
                str(rng.randint(1950, 2008)) if rng.random() < 0.85 else "NULL",
                rng.choice(_EDUCATION),
                goals,
                rng.choice(_COUNTRIES),
                "",
                "NULL",
                "NULL",
            )
        )


def _enrollment_lines(
    seed: int, users: int, course: Course, course_index: int, courses: int
) -> Iterator[str]:
    rng = random.Random(seed * 1_000_033 + course_index)
    enrollment_id = rng.randint(100_000, 5_000_000)
    for index in _enrolled(users, course_index, courses):
        enrollment_id += rng.randint(1, 40)
        created = (
            course.start - timedelta(days=30) + timedelta(seconds=rng.randrange((course.days + 30) * 86400))
        )
        if rng.random() < 0.5:
            created = created.replace(microsecond=rng.randint(1, 999_999))
        mode = rng.choices([m for m, _ in _MODES], [w for _, w in _MODES])[0]
        active = "1" if rng.random() < 0.92 else "0"
        yield _tsv(
            (
                str(enrollment_id),
                str(FIRST_USER_ID + index),
                course.course_id,
                format_datetime(created),
                active,
                mode,
            )
        )


def generate_package(
    out_dir: Path,
    studentmodule_rows: int,
    users: int = 50_000,
    courses: int = 1,
    seed: int = 42,
    date: str = DEFAULT_DATE,
) -> Path:
    """Write a whole `database_state` delivery under `out_dir`; returns the dated directory."""
    if courses < 1 or users < 1 or studentmodule_rows < 0:
        raise ValueError("courses and users must be >= 1, rows >= 0")
    area = out_dir / "database_state"
    dated = area / date
    dated.mkdir(parents=True, exist_ok=True)
    for index in range(courses):
        course = course_for(index)
        prefix = course.file_prefix
        write_studentmodule(
            dated / f"{prefix}-courseware_studentmodule-prod-analytics.sql",
            studentmodule_rows,
            seed,
            course=course,
            users=users,
            course_index=index,
            courses=courses,
        )
        _write_lines(
            dated / f"{prefix}-auth_user-prod-analytics.sql",
            AUTH_USER_HEADER,
            _auth_user_lines(seed, users, index, courses),
        )
        _write_lines(
            dated / f"{prefix}-auth_userprofile-prod-analytics.sql",
            PROFILE_HEADER,
            _profile_lines(seed, users, index, courses),
        )
        _write_lines(
            dated / f"{prefix}-student_courseenrollment-prod-analytics.sql",
            ENROLLMENT_HEADER,
            _enrollment_lines(seed, users, course, index, courses),
        )
    latest = area / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(date)
    return dated


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="root of the data package (database_state/ goes under it)")
    parser.add_argument("--studentmodule-rows", type=int, default=1_000_000, help="rows per course")
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--courses", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--date", default=DEFAULT_DATE, help="name of the dated delivery directory")
    args = parser.parse_args(argv)
    dated = generate_package(
        args.out_dir, args.studentmodule_rows, args.users, args.courses, args.seed, args.date
    )
    for path in sorted(dated.iterdir()):
        print(f"{path.stat().st_size:>14,d}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
