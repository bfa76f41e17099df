#!/usr/bin/env python3
"""Write examples/data/: a small, invented edX research data package (three courses, one week).

Everything is made up: people, ids, course content, forum posts. The files imitate the formats and
quirks of docs/edx-data-package.md era by era (see examples/README.md for which file imitates what,
and for the deliberately bad lines). The output is byte-identical on every run: a fixed seed, fixed
tar/gzip mtimes, sorted tar members. Standard library only.

    python examples/make_sample_data.py              # rewrite examples/data/ from scratch
    python examples/make_sample_data.py --list-bad   # ... and print the deliberately bad input
    python examples/make_sample_data.py --out DIR    # write the package elsewhere (e.g. for a test)

The module is long because it writes a dozen formats (TSV in three escapings, forum JSON in three
mongoexport dialects, OLX, course-structure JSON, tracking events); each section keeps one format's
writer next to the data that exercises its quirks.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sys
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

SEED = 20150607
SUMMARY = "Write examples/data/: a small, invented edX research data package."
DEFAULT_OUT = Path(__file__).resolve().parent / "data"
CLICK_DIR = "2015-06-01"
DUMP_DIR = "2015-06-07"
FIXED_MTIME = int(datetime(2015, 6, 7, tzinfo=UTC).timestamp())
ORG = "UQx"
WINDOW = [
    datetime(2015, 5, 30, tzinfo=UTC),
    datetime(2015, 5, 31, tzinfo=UTC),
    datetime(2015, 6, 1, tzinfo=UTC),
]  # days covered by the tracking logs

# Documentation ranges, a few public resolvers for GeoIP tests, private and loopback addresses.
HOME_IPS = [
    "1.1.1.1",
    "8.8.8.8",
    "203.2.218.214",
    "2001:4860:4860::8888",
    "192.0.2.17",
    "198.51.100.42",
    "203.0.113.9",
    "2001:db8::1f",
    "10.0.0.5",
    "192.168.1.20",
]
AGENTS = [
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/43.0.2357.81 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_3) AppleWebKit/600.6.3 (KHTML, like Gecko) "
    "Version/8.0.6 Safari/600.6.3",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:38.0) Gecko/20100101 Firefox/38.0",
    "Mozilla/5.0 (iPad; CPU OS 8_3 like Mac OS X) AppleWebKit/600.1.4 (KHTML, like Gecko) "
    "Version/8.0 Mobile/12F69 Safari/600.1.4",
]
MOBILE_AGENT = "edX/org.edx.mobile (1.0.02; OS Version 8.3 (Build 12F69))"

# first_name|last_name|username[|profile name, when not "first last"]. Row 0 is the course team.
NAMES_TABLE = """
Sam|Staffer|uqx_staff
Ada|Sample|ada_sample
Zoë|Exämple|zoe_example
示例|李|li_shili|李 示例
Bruno|Placeholder|bruno_p
Chidi|Testcase|chidi_t
Dana|Fixture|dana_fixture
Émile|Démo|emile_demo
Farah|Mock|farah_mock
Gus|Stub|gus_stub
Hana|Dummy|hana_d
Ivo|Specimen|ivo_specimen
José|Muestra|jose_muestra
Kai|Example|kai_example
Lena|Beispiel|lena_b
Mika|Esimerkki|mika_e
Noor|Voorbeeld|noor_v
Ольга|Пример|olga_primer
Pia|Exemplo|pia_exemplo
Quinn|Sandbox|quinn_sb
Rosa|Ejemplo|rosa_ejemplo
Søren|Prøve|soren_prove
Tariq|Mithal|tariq_m
Uma|Udaharan|uma_u
Vera|Probe|vera_probe
Mẫu|Nguyễn|nguyen_mau|Nguyễn Mẫu
Xavier|Essai|xavier_essai
Yara|Amostra|yara_a
Siobhán|O'Sample|siobhan_os
Zane|Trial|zane_trial
Aiko|Rei|aiko_rei
Ben|Testworth|ben_tw
Carla|Proefje|carla_p
Dev|Namuna|dev_namuna
Eve|Harness|eve_harness
Finn|Mockingbird|finn_mb
Gia|Campione|gia_campione
Hugo|Exemple|hugo_exemple
Iris|Paradigm|iris_p
Jonas|Pavyzdys|jonas_p
Kira|Primjer|kira_primjer
Leo|Przykład|leo_przyklad
Maja|Exempel|maja_exempel
Nils|Eksempel|nils_e
Omar|Mithal|omar_mithal
Paula|Exemplar|paula_ex
Raj|Udaharan|raj_u
Sara|Esempio|sara_esempio
Tom|Prototype|tom_proto
Ula|Örnek|ula_ornek
"""
NAMES = [[*row.split("|"), ""][:4] for row in NAMES_TABLE.strip().splitlines()]
GOALS = [
    "Understand light microscopy.\r\nUse it in my lab.",
    "1.\tlearn the basics\r\n2.\tpass the exam",
    "Career change \N{EN DASH} into research",
    "line one\nline two (LF only)",
    "",
]
ADDRESSES = [
    "12 Example Street\r\nSampleton QLD 4000\r\nAustralia",
    "PO Box 99\r\nTestville",
    "1 Placeholder Road, Demo City",
    "",
]
METAS = [
    '{"old_names": [["Ada Sampel", "Typo in my name", "2015-02-11T03:14:07.000000+00:00"]]}',
    '{"6002x_exit_response": {"rating": ["5"], "teach_ee": ["false"]}}',
    json.dumps({"note": "exported from C:\\Users\\sample"}),
    "{}",
]
EDUCATION = ["p", "m", "b", "a", "hs", "jhs", "el", "none", "other", "p_se", "p_oth", ""]


# ----------------------------------------------------------------------------------- people


@dataclass
class Person:
    idx: int
    id: int
    profile_id: int
    username: str
    first: str
    last: str
    name: str
    email: str
    is_staff: int
    is_active: int
    date_joined: datetime
    last_login: datetime | None
    gender: str | None
    year_of_birth: int | None
    level_of_education: str | None
    country: str
    city: str
    mailing_address: str | None
    goals: str | None
    meta: str
    ips: list[str]
    agent: str


def make_people(rng: random.Random) -> list[Person]:
    ids = sorted(rng.sample(range(210_000, 9_400_000), len(NAMES)))
    people = []
    for idx, ((first, last, username, name), uid) in enumerate(zip(NAMES, ids, strict=True)):
        joined = datetime(2013, 1, 10, 8) + timedelta(days=idx * 16, seconds=rng.randrange(86400))
        ips = [HOME_IPS[idx % len(HOME_IPS)]]
        if idx % 7 == 3:  # travellers: two countries in their events
            ips.append(HOME_IPS[(idx + 3) % len(HOME_IPS)])
        people.append(
            Person(
                idx=idx,
                id=uid,
                profile_id=uid - 1000 - idx,
                username=username,
                first=first,
                last=last,
                name=name or f"{first} {last}",
                email=f"{username.replace('_', '.')}@example.org",
                is_staff=int(idx == 0),
                is_active=int(idx != 9),
                date_joined=joined,
                last_login=None
                if idx in (9, 13)
                else datetime(2015, 5, 20, 7) + timedelta(seconds=rng.randrange(14 * 86400)),
                gender=rng.choice(["m", "f", "f", "m", "o", "", None]),
                year_of_birth=None if idx % 6 == 2 else rng.randrange(1950, 2000),
                level_of_education=None if idx % 8 == 5 else rng.choice(EDUCATION),
                country=rng.choice(["AU", "AU", "US", "CN", "IN", "GB", ""]),
                city=rng.choice(["Brisbane", "", "", "Springfield"]),
                mailing_address=None if idx % 5 == 4 else ADDRESSES[idx % len(ADDRESSES)],
                goals=None if idx % 9 == 8 else GOALS[idx % len(GOALS)],
                meta=METAS[idx // 4] if idx % 4 == 1 and idx // 4 < len(METAS) else "",
                ips=ips,
                agent=AGENTS[idx % len(AGENTS)],
            )
        )
    return people


# ---------------------------------------------------------------------------------- courses


@dataclass
class Leaf:
    tag: str  # problem, video, html or discussion
    url_name: str
    display_name: str
    kind: str = ""  # problem: choice or string
    weight: str | None = None  # problem weight as written in the XML ("null" is a real value)
    discussion_id: str = ""
    category: str = ""
    inline: bool = False


@dataclass
class Vertical:
    url_name: str
    display_name: str
    leaves: list[Leaf]


@dataclass
class Sequential:
    url_name: str
    display_name: str
    fmt: str | None
    verticals: list[Vertical]


@dataclass
class Chapter:
    url_name: str
    display_name: str
    sequentials: list[Sequential]


@dataclass
class Course:
    key: str
    number: str
    run: str
    new_style: bool
    edge: bool
    era: str  # escaping of the ordinary .sql files: "mysql" (pre-Nov-2015) or "python"
    display_name: str
    start: datetime
    end: datetime
    enroll_open: datetime
    quoted_dates: bool
    icon: str
    members: list[int]
    tar_top: str | None  # None: shipped as an unpacked directory
    serial: int = 0  # spreads the ids of global tables over the courses
    chapters: list[Chapter] = field(default_factory=list)

    @property
    def mongoname(self) -> str:
        if self.new_style:
            return f"course-v1:{ORG}+{self.number}+{self.run}"
        return f"{ORG}/{self.number}/{self.run}"

    @property
    def prefix(self) -> str:
        return f"{ORG}-{self.number}-{self.run}"

    @property
    def suffix(self) -> str:
        return "prod-edge-analytics" if self.edge else "prod-analytics"

    @property
    def dbname(self) -> str:
        return "_".join(p.replace(".", "") for p in (ORG, self.number, self.run))

    @property
    def discussiontable(self) -> str:
        return f"{self.prefix}-{'edge' if self.edge else 'prod'}"

    @property
    def csjson(self) -> str:
        return f"{self.prefix}-course_structure-{self.suffix}.json"

    @property
    def host(self) -> str:
        return "edge.edx.org" if self.edge else "courses.edx.org"

    def loc(self, category: str, name: str) -> str:
        if self.new_style:
            return f"block-v1:{ORG}+{self.number}+{self.run}+type@{category}+block@{name}"
        return f"i4x://{ORG}/{self.number}/{category}/{name}"

    @property
    def course_loc(self) -> str:
        return self.loc("course", "course" if self.new_style else self.run)

    def html_id(self, category: str, name: str) -> str:
        """The id used in browser events and problem input names."""
        return name if self.new_style else f"i4x-{ORG}-{self.number}-{category}-{name}"

    def leaves(self, tag: str) -> list[Leaf]:
        return [
            leaf
            for ch in self.chapters
            for sq in ch.sequentials
            for vt in sq.verticals
            for leaf in vt.leaves
            if leaf.tag == tag
        ]

    def page(self, ch: Chapter, sq: Sequential) -> str:
        return f"https://{self.host}/courses/{self.mongoname}/courseware/{ch.url_name}/{sq.url_name}/"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def youtube_id(url_name: str) -> str:
    return base64.urlsafe_b64encode(hashlib.md5(url_name.encode()).digest()).decode()[:11]


def outline(u: Callable[[str], str], text: str) -> list[Chapter]:
    """Parse an outline table; u() maps a label to the course's url_name. Indentation is decorative."""
    chapters: list[Chapter] = []
    for line in text.strip().splitlines():
        words, title = (part.strip() for part in line.split("|"))
        tag, label, *extra = words.split()
        if tag == "chapter":
            chapters.append(Chapter(u(label), title, []))
        elif tag == "sequential":
            chapters[-1].sequentials.append(Sequential(u(label), title, extra[0] if extra else None, []))
        elif tag == "vertical":
            chapters[-1].sequentials[-1].verticals.append(Vertical(u(label), title, []))
        else:
            leaf = Leaf(tag, u(label), title)
            if tag == "problem":
                leaf.kind, leaf.weight = extra
            if tag == "discussion":
                leaf.discussion_id = md5("disc" + leaf.url_name)
                leaf.category = chapters[-1].display_name.split(":")[0]
                leaf.inline = extra == ["inline"]
            chapters[-1].sequentials[-1].verticals[-1].leaves.append(leaf)
    return chapters


# tag label [sequential format | problem kind and weight | "inline" discussion] | display name
BIOIMG_OUTLINE = """
chapter week_1 | Week 1: Light and lenses
  sequential week_1_lectures | Lectures
    vertical w1_welcome | Welcome
      video welcome_video | Welcome to BIOIMG101x
      html course_overview | Course overview
      discussion introductions inline | Introduce yourself
    vertical w1_lenses | Lenses
      video lenses_video | How a lens forms an image
      html lens_notes | Lens notes
  sequential week_1_homework Homework | Homework 1
    vertical w1_hw | Problems
      problem resolution_limit choice 2.0 | Resolution limit
      problem magnification string null | Magnification
chapter week_2 | Week 2: Fluorescence
  sequential week_2_lectures | Lectures
    vertical w2_fluor | Fluorophores
      video fluorescence_video | Fluorescence
      discussion fluorescence_forum | Discuss fluorophores
  sequential week_2_homework Homework | Homework 2
    vertical w2_hw | Problems
      problem stokes_shift choice 1.0 | Stokes shift
chapter week_3 | Week 3: Image analysis \N{EN DASH} ImageJ
  sequential week_3_lectures | Lectures
    vertical w3_imagej | ImageJ
      video imagej_video | Opening an image
      problem pixel_quiz string 1.0 | Pixel quiz
"""
PSYC_OUTLINE = """
chapter intro | Module 1: What is psychology?
  sequential intro_seq | Introduction
    vertical intro_v1 | Welcome
      video welcome | Welcome
      html syllabus | Syllabus
      discussion meet inline | Meet your classmates
  sequential intro_hw Homework | Check your understanding
    vertical intro_hw_v | Quiz
      problem q_history choice 1.0 | A short history
      problem q_define string null | Define it
chapter memory | Module 2: Memory
  sequential memory_seq | Remembering
    vertical memory_v1 | Working memory
      video wm | Working memory
      html wm_reading | Reading
  sequential memory_hw Homework | Memory quiz
    vertical memory_hw_v | Quiz
      problem q_span choice 2.0 | Digit span
chapter learning | Module 3: Learning
  sequential learning_seq | Conditioning
    vertical learning_v1 | Pavlov
      video pavlov | Classical conditioning
      discussion learning_forum | Your examples
chapter exam | Final exam
  sequential exam_seq Exam | Exam
    vertical exam_v1 | Exam
      problem q_final string 3.0 | Final question
"""
DEMO_OUTLINE = """
chapter start | Getting started
  sequential start_seq | Orientation
    vertical start_v1 | Hello
      video hello | Hello from the team
      html howto | How this course works
      discussion hello_forum inline | Say hello
      discussion questions | Questions
  sequential start_hw Homework | Practice
    vertical start_hw_v | Practice
      problem p_one choice 1.0 | First problem
      problem p_two string null | Second problem
chapter more | Going further
  sequential more_seq | Extras
    vertical more_v1 | Extras
      html extras | Extra reading
      video bonus | Bonus video
chapter wrapup | Wrapping up
  sequential wrapup_seq | Summary
    vertical wrapup_v1 | Summary
      video bye | Goodbye
      html next | What next
"""


def make_courses() -> list[Course]:
    bioimg = Course(
        key="bioimg_101x_1T2014", number="BIOIMG101x", run="1T2014", new_style=False, edge=False,
        era="mysql", display_name="Fundamentals of Biomedical Imaging",
        start=datetime(2014, 3, 3, tzinfo=UTC), end=datetime(2014, 5, 26, tzinfo=UTC),
        enroll_open=datetime(2013, 12, 2, tzinfo=UTC), quoted_dates=False, icon="fa-desktop",
        members=list(range(30)), tar_top=None,
    )  # fmt: skip
    psyc = Course(
        key="psyc_10301x_4T2016", number="PSYC1030.1x", run="4T2016", new_style=True, edge=False,
        era="python", display_name="Introduction to Psychology: The Psychology of Learning",
        start=datetime(2015, 4, 1, tzinfo=UTC), end=datetime(2015, 7, 31, tzinfo=UTC),
        enroll_open=datetime(2015, 2, 2, tzinfo=UTC), quoted_dates=True, icon="fa-users",
        members=[0, *range(20, 44)], tar_top="UQx-PSYC1030.1x-4T2016", serial=1,
    )  # fmt: skip
    demo = Course(
        key="demo_101x_2T2015", number="DEMO101x", run="2T2015", new_style=False, edge=True,
        era="mysql", display_name="Demonstration Course (edge)",
        start=datetime(2015, 5, 4, tzinfo=UTC), end=datetime(2015, 7, 27, tzinfo=UTC),
        enroll_open=datetime(2015, 4, 1, tzinfo=UTC), quoted_dates=False, icon="fa-flask",
        members=[0, 1, 2, 3, 4, *range(25, 30), *range(44, 50)], tar_top="2T2015", serial=2,
    )  # fmt: skip
    bioimg.chapters = outline(lambda s: s, BIOIMG_OUTLINE)
    psyc.chapters = outline(lambda s: md5("PSYC" + s), PSYC_OUTLINE)
    demo.chapters = outline(lambda s: md5("DEMO" + s)[:20], DEMO_OUTLINE)
    return [bioimg, psyc, demo]


# ------------------------------------------------------------------ per-course learner state


@dataclass
class Enrollment:
    id: int
    person: Person
    course: Course
    created: datetime
    is_active: int
    mode: str
    activity: str  # none, light or explorer
    cert: tuple[str, str] | None = None  # (status, grade)


# Enrollments created inside the tracking-log window, so the logs carry their activation event.
WINDOW_ENROLLMENTS = {
    ("BIOIMG101x", 28): datetime(2015, 5, 30, 10, 4, 11, tzinfo=UTC),
    ("PSYC1030.1x", 43): datetime(2015, 5, 31, 14, 0, 2, 512000, tzinfo=UTC),
    ("PSYC1030.1x", 42): datetime(2015, 6, 1, 9, 30, 0, tzinfo=UTC),
    ("DEMO101x", 49): datetime(2015, 5, 31, 3, 12, 45, tzinfo=UTC),
}
INACTIVE = {("BIOIMG101x", 7), ("BIOIMG101x", 15), ("PSYC1030.1x", 24), ("DEMO101x", 45)}


def make_enrollments(rng: random.Random, people: list[Person], courses: list[Course]) -> list[Enrollment]:
    out = []
    next_id = 4_100_000
    for c in courses:
        for idx in c.members:
            p = people[idx]
            created = max(
                p.date_joined.replace(tzinfo=UTC) + timedelta(hours=rng.randrange(1, 400)),
                c.enroll_open + timedelta(seconds=rng.randrange(60 * 86400)),
            )
            if c.era == "python" and idx % 3 == 0:
                created += timedelta(microseconds=rng.randrange(1, 999_999))
            created = WINDOW_ENROLLMENTS.get((c.number, idx), created)
            mode = "honor" if idx % 4 else rng.choice(["verified", "audit"])
            activity = (
                "explorer" if idx == 0 else rng.choice(["none", "light", "explorer", "explorer", "light"])
            )
            if created >= WINDOW[0]:
                activity = "light"
            next_id += rng.randrange(1, 900)
            out.append(
                Enrollment(next_id, p, c, created, int((c.number, idx) not in INACTIVE), mode, activity)
            )
    return out


def assign_certificates(rng: random.Random, enrollments: list[Enrollment]) -> None:
    for e in enrollments:
        finished = e.course.number == "BIOIMG101x"
        idx = e.person.idx
        if e.activity == "explorer" and (idx % 3 != 2 if finished else idx % 5 == 0):
            e.cert = ("downloadable", f"{rng.randrange(62, 99) / 100:.2f}")
        elif e.activity == "light" and (idx % 2 == 0 if finished else idx % 6 == 1):
            e.cert = ("notpassing", f"{rng.randrange(5, 45) / 100:.2f}")


# ------------------------------------------------------------------------------ .sql writing

TABLE_HEADERS: dict[str, str] = {
    "auth_user": "id username first_name last_name email password is_staff is_active "
    "is_superuser last_login date_joined status email_key avatar_type country show_country "
    "date_of_birth interesting_tags ignored_tags email_tag_filter_strategy "
    "display_tag_filter_strategy consecutive_days_visit_count",
    "auth_userprofile": "id user_id name language location meta courseware gender "
    "mailing_address year_of_birth level_of_education goals allow_certificate country city bio "
    "profile_image_uploaded_at",
    "student_courseenrollment": "id user_id course_id created is_active mode",
    "certificates_generatedcertificate": "id user_id download_url grade course_id key "
    "distinction status verify_uuid download_uuid name created_date modified_date error_reason "
    "mode",
    "courseware_studentmodule": "id module_type module_id student_id state grade created "
    "modified max_grade done course_id",
    "user_id_map": "hash_id id username",
    "user_api_usercoursetag": "id user_id key course_id value",
    "wiki_article": "id current_revision_id created modified owner_id group_id group_read "
    "group_write other_read other_write",
    "wiki_articlerevision": "id revision_number user_message automatic_log ip_address user_id "
    "modified created previous_revision_id deleted locked article_id content title",
    "student_languageproficiency": "id user_profile_id code",
    "student_courseaccessrole": "org course_id user_id role",
    "django_comment_client_role_users": "course_id user_id name",
    "student_anonymoususerid": "id user_id anonymous_user_id course_id",
}


class Raw(str):
    """A pre-rendered, deliberately malformed row written verbatim."""


def escape(value: str, era: str) -> str:
    value = value.replace("\\", "\\\\")
    if era == "pipeline":  # python2 csv, escapechar='\\': backslash + the raw character
        return value.replace("\t", "\\\t").replace("\n", "\\\n")
    value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\0", "\\0")
    return value.replace("\r", "\\r") if era == "python" else value  # mysql: CR stays raw


def cell(value: object, era: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        value = value.replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S") if era == "mysql" else str(value)
    return escape(str(value), era)


@dataclass
class Bad:
    file: str
    line: int
    kind: str
    detail: str


@dataclass
class Package:
    root: Path
    bad: list[Bad] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def write(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def sql(self, c: Course, table: str, rows: Sequence[Sequence[object]], era: str = "") -> None:
        """Write one table; rows that are Raw strings go in verbatim and are recorded as bad."""
        era = era or c.era
        name = f"{c.prefix}-{table}-{c.suffix}.sql"
        header = TABLE_HEADERS[table].split()
        out = ["\t".join(header)]
        good = 0
        for row in rows:
            line_no = sum(part.count("\n") + 1 for part in out) + 1
            if isinstance(row, Raw):
                out.append(str(row))
                n = len(row.split("\t"))
                kind = "too_few_fields" if n < len(header) else "too_many_fields"
                self.bad.append(
                    Bad(
                        f"database_state/{DUMP_DIR}/{name}",
                        line_no,
                        kind,
                        f"{n} fields, header has {len(header)}",
                    )
                )
                continue
            assert len(row) == len(header), (table, row)
            out.append("\t".join(cell(v, era) for v in row))
            good += 1
        self.write(f"database_state/{DUMP_DIR}/{name}", ("\n".join(out) + "\n").encode())
        self.counts[f"database_state/{DUMP_DIR}/{name}"] = {"rows": good}


def hex32(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def user_row(p: Person) -> list[object]:
    """auth_user in header order; the exporter forces password, status, tags etc. to constants."""
    return [p.id, p.username, p.first, p.last, p.email, "", p.is_staff, p.is_active, 0, p.last_login,
            p.date_joined, "", None, "", "", 0, None, "", "", 0, 0, 0]  # fmt: skip


def profile_row(p: Person) -> list[object]:
    """auth_userprofile in header order (SELECT *, so allow_certificate sits between goals and country)."""
    return [p.profile_id, p.id, p.name, "English" if p.idx % 10 == 3 else "", "", p.meta, "course.xml",
            p.gender, p.mailing_address, p.year_of_birth, p.level_of_education, p.goals, 1, p.country,
            p.city, None if p.idx % 2 else "", None]  # fmt: skip


def certificate_row(rng: random.Random, e: Enrollment, n: int) -> list[object]:
    status, grade = e.cert or ("", "")
    if e.course.number == "BIOIMG101x":
        made = datetime(2014, 6, 10, 2, 0, 0)
    else:
        made = datetime(2015, 6, 2, 1, 15, 7, 120000 * (n % 2))
    ok = status == "downloadable"
    url = f"https://certificates.example.org/downloads/{hex32(rng)}/Certificate.pdf" if ok else ""
    return [e.id + 2_000_000, e.person.id, url, grade, e.course.mongoname, hex32(rng), 0, status,
            hex32(rng) if ok else "", hex32(rng), e.person.name, made, made + timedelta(minutes=n), "",
            "verified" if e.mode == "verified" else "honor"]  # fmt: skip


def write_tables(
    pkg: Package, rng: random.Random, c: Course, enrollments: list[Enrollment], modules: list[list[object]]
) -> None:
    ens = [e for e in enrollments if e.course is c]
    people = sorted((e.person for e in ens), key=lambda p: p.id)
    cid = c.mongoname
    pkg.sql(c, "auth_user", [user_row(p) for p in people])
    pkg.sql(c, "auth_userprofile", [profile_row(p) for p in people])
    rows: list[Sequence[object]] = [
        [e.id, e.person.id, cid, e.created, e.is_active, e.mode] for e in sorted(ens, key=lambda e: e.id)
    ]
    if c.edge:  # deliberately bad rows, for users the dump does not contain
        rows.insert(5, Raw(f"4999901\t9999901\t{cid}\t2015-05-02 11:00:00\t1"))
        rows.insert(12, Raw(f"4999902\t9999902\t{cid}\t2015-05-03 12:30:00\t1\thonor\tverified"))
    pkg.sql(c, "student_courseenrollment", rows)
    certified = sorted((e for e in ens if e.cert), key=lambda e: e.person.id)
    pkg.sql(
        c, "certificates_generatedcertificate", [certificate_row(rng, e, n) for n, e in enumerate(certified)]
    )
    pkg.sql(c, "courseware_studentmodule", modules, era="pipeline")
    pkg.sql(c, "user_id_map", [[md5(f"not-a-real-secret{p.id}"), p.id, p.username] for p in people])
    tag = "xblock.partition_service.partition_1180612963"
    active = [e.person for e in ens if e.activity != "none"][:8]
    pkg.sql(
        c,
        "user_api_usercoursetag",
        [[7000 + 100 * c.serial + n, p.id, tag, cid, str(p.idx % 2)] for n, p in enumerate(active)],
    )
    write_wiki(pkg, c, people[0])
    if c.number == "BIOIMG101x":
        codes = zip(people[1:5], ["en", "fr", "zh", "en"], strict=True)
        pkg.sql(
            c,
            "student_languageproficiency",
            [[300 + n, p.profile_id, code] for n, (p, code) in enumerate(codes)],
        )
    if c.number == "PSYC1030.1x":
        staff, beta, ta = people[0].id, people[3].id, people[2].id
        roles = [
            [ORG, cid, staff, "instructor"],
            [ORG, cid, staff, "staff"],
            [ORG, cid, beta, "beta_testers"],
        ]
        pkg.sql(c, "student_courseaccessrole", roles)
        forum_roles = [[cid, p.id, "Administrator" if p.is_staff else "Student"] for p in people]
        pkg.sql(c, "django_comment_client_role_users", [*forum_roles, [cid, ta, "Community TA"]])
        anonymous = [[880 + n, p.id, md5(f"anon{p.id}{cid}"), cid] for n, p in enumerate(people)]
        pkg.sql(c, "student_anonymoususerid", anonymous)
        name = f"{c.prefix}-student_languageproficiency-{c.suffix}.sql.failed"
        pkg.write(f"database_state/{DUMP_DIR}/{name}", FAILED_TRACEBACK.encode())


FAILED_TRACEBACK = """\
Traceback (most recent call last):
  File "/edx/app/analytics-exporter/venvs/analytics-exporter/local/lib/python2.7/site-packages/exporter/main.py", line 169, in _run_task
    task.run(filename, dry_run, **kwargs)
  File "/edx/app/analytics-exporter/venvs/analytics-exporter/local/lib/python2.7/site-packages/exporter/tasks.py", line 132, in run
    cls.execute_query(filename, dry_run, **kwargs)
  File "/edx/app/analytics-exporter/venvs/analytics-exporter/local/lib/python2.7/site-packages/exporter/mysql_query.py", line 61, in execute
    cursor.execute(query)
OperationalError: (2013, 'Lost connection to MySQL server during query')
"""


def write_wiki(pkg: Package, c: Course, staff: Person) -> None:
    """Two articles, three revisions; content holds CR-LF, a TAB and a backslash."""
    art = 900 + 10 * c.serial
    t0 = datetime(2014, 2, 20, 4, 30) if c.start.year == 2014 else datetime(2015, 3, 30, 6, 1)
    t3, t5 = t0 + timedelta(days=3), t0 + timedelta(days=5)
    home = f"= {c.display_name} =\r\nThis is the wiki for **{c.number}**."
    links = home + "\r\n\r\n* [[Glossary]]\r\n* Tabs\there and a backslash \\ too"
    glossary = "Glossary\r\n--------\r\nTerm: \N{LEFT-POINTING DOUBLE ANGLE QUOTATION MARK}meaning\N{RIGHT-POINTING DOUBLE ANGLE QUOTATION MARK}"
    pkg.sql(c, "wiki_article", [
        [art, art + 2, t0, t3, staff.id, None, 1, 1, 1, 0],
        [art + 1, art + 3, t5, t5, staff.id, None, 1, 1, 1, 0],
    ])  # fmt: skip
    pkg.sql(c, "wiki_articlerevision", [
        [art + 1, 1, "", "", "192.0.2.10", staff.id, t0, t0, None, 0, 0, art, home, c.number],
        [art + 2, 2, "Added links", "", None, staff.id, t3, t3, art + 1, 0, 0, art, links, c.number],
        [art + 3, 1, "", "", "198.51.100.7", staff.id, t5, t5, None, 0, 0, art + 1, glossary, "Glossary"],
    ])  # fmt: skip


# ---------------------------------------------------------------------- courseware_studentmodule


def problem_state(c: Course, leaf: Leaf, who: Person, when: datetime, correct: bool) -> dict[str, Any]:
    aid = f"{c.html_id('problem', leaf.url_name)}_2_1"
    if leaf.kind == "choice":
        answer = "choice_1" if correct else "choice_0"
    elif who.idx % 3 == 0:
        answer = '{"answer": "42", "state": "{\\"selected\\": [1, 2]}"}'  # JS-input style
    else:
        answer = 'the "Abbe" limit' if correct else "I don't know"
    return {
        "correct_map": {
            aid: {
                "hint": "",
                "hintmode": None,
                "correctness": "correct" if correct else "incorrect",
                "npoints": None,
                "msg": "",
                "queuestate": None,
            }
        },
        "input_state": {aid: {}},
        "last_submission_time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "attempts": 1 + who.idx % 3,
        "seed": 1,
        "done": True,
        "student_answers": {aid: answer},
    }


MODULE_LIMIT = WINDOW[-1] + timedelta(hours=20)  # no activity after the last tracking-log day


@dataclass
class ModuleRows:
    """Accumulates one course's courseware_studentmodule rows, learner by learner."""

    rng: random.Random
    course: Course
    next_id: list[int]  # shared by all courses: the table is global
    rows: list[list[object]] = field(default_factory=list)
    stamps: list[datetime] = field(default_factory=list)
    tab_done: bool = False
    lf_done: bool = False

    def when(self) -> datetime:
        t = self.stamps.pop(0) if len(self.stamps) > 1 else self.stamps[0]
        return t.replace(microsecond=0) if self.rng.random() < 0.5 else t

    def add(
        self, p: Person, kind: str, name: str, state: str, grade: object = None, top: object = None
    ) -> None:
        created = self.when()
        modified = created + timedelta(seconds=self.rng.randrange(0, 5 * 86400))
        modified = max(created, min(modified, MODULE_LIMIT))
        self.next_id[0] += self.rng.randrange(1, 40)
        c = self.course
        loc = c.course_loc if kind == "course" else c.loc(kind, name)
        self.rows.append(
            [self.next_id[0], kind, loc, p.id, state, grade, created, modified, top, "na", c.mongoname]
        )

    def learner(self, e: Enrollment) -> None:
        c, p, rng = self.course, e.person, self.rng
        first = max(e.created, c.start) + timedelta(minutes=rng.randrange(5, 3 * 24 * 60))
        end = c.end if first < c.end - timedelta(days=7) else MODULE_LIMIT  # late: archived course
        first = min(first, MODULE_LIMIT - timedelta(hours=3))
        span = int((end - first).total_seconds())
        self.stamps = sorted(
            first + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(1_000_000))
            for _ in range(40)
        )
        chapters = c.chapters if e.activity == "explorer" else c.chapters[:1]
        if e.activity == "explorer" and p.idx % 4 == 2:
            chapters = c.chapters[: (len(c.chapters) + 1) // 2]
        self.add(p, "course", "", json.dumps({"position": len(chapters)}))
        for ch in chapters:
            self.add(p, "chapter", ch.url_name, json.dumps({"position": 1}))
            for sq in ch.sequentials[: 1 if e.activity == "light" else None]:
                state = json.dumps({"position": len(sq.verticals)})
                if not self.tab_done:  # a raw TAB inside the JSON: written as backslash + TAB
                    state, self.tab_done = '{"position":\t1}', True
                self.add(p, "sequential", sq.url_name, state)
                for leaf in (lf for vt in sq.verticals for lf in vt.leaves):
                    if leaf.tag == "video":
                        pos = f"00:{rng.randrange(0, 9):02d}:{rng.randrange(60):02d}"
                        state = json.dumps({"saved_video_position": pos, "speed": "1.50"})
                        if not self.lf_done:  # a raw LF inside the JSON: backslash + LF in the file
                            state, self.lf_done = state.replace(", ", ",\n"), True
                        self.add(p, "video", leaf.url_name, state)
                    elif leaf.tag == "problem":
                        self.problem(p, leaf)

    def problem(self, p: Person, leaf: Leaf) -> None:
        rng = self.rng
        if rng.random() < 0.2:  # opened, never submitted: no grade yet
            self.add(p, "problem", leaf.url_name, json.dumps({"seed": 1, "input_state": {}}))
            return
        correct = rng.random() < 0.7
        top = 2 if leaf.weight == "2.0" else 1
        grade = top if correct else rng.choice([0, 0.5]) if top == 2 else 0
        t = self.stamps[0]  # the time add() is about to use, without its rounding
        state = problem_state(self.course, leaf, p, t, correct)
        self.add(p, "problem", leaf.url_name, json.dumps(state), grade, top)


def make_modules(
    rng: random.Random, c: Course, enrollments: list[Enrollment], next_id: list[int]
) -> list[list[object]]:
    rows = ModuleRows(rng, c, next_id)
    for e in sorted(enrollments, key=lambda e: e.person.id):
        if e.course is c and e.activity != "none":
            rows.learner(e)
    return rows.rows


# ----------------------------------------------------------------------------- course OLX


def attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def tag(name: str, attrs: dict[str, str], children: Iterable[str] = (), indent: str = "") -> str:
    head = f"{indent}<{name}" + "".join(f' {k}="{attr(v)}"' for k, v in attrs.items())
    kids = list(children)
    if not kids:
        return head + "/>"
    return head + ">\n" + "\n".join(kids) + f"\n{indent}</{name}>"


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def general_topic(c: Course) -> str:
    return "course" if c.new_style else f"i4x-{ORG}-{c.number}-course-{c.run}"


def policy(c: Course) -> dict[str, Any]:
    return {
        "display_name": c.display_name,
        "start": iso(c.start),
        "end": iso(c.end),
        "discussion_topics": {"General": {"id": general_topic(c)}},
        "graceperiod": "18000 seconds",
        "tabs": [
            {"type": "courseware", "name": "Courseware"},
            {"type": "course_info", "name": "Course Info"},
            {"type": "discussion", "name": "Discussion"},
            {"type": "wiki", "name": "Wiki"},
            {"type": "progress", "name": "Progress"},
        ],
    }


def leaf_attrs(c: Course, leaf: Leaf) -> dict[str, str]:
    if leaf.tag == "video":
        yt = youtube_id(leaf.url_name)
        return {
            "display_name": leaf.display_name,
            "youtube": f"1.00:{yt}",
            "youtube_id_1_0": yt,
            "html5_sources": json.dumps([f"https://video.example.org/{yt}.mp4"]),
            "sub": yt,
        }
    if leaf.tag == "problem":
        return {
            "display_name": leaf.display_name,
            "weight": leaf.weight or "null",
            "max_attempts": "3",
            "rerandomize": "never",
            "showanswer": "finished",
        }
    if leaf.tag == "discussion":
        return {
            "discussion_category": leaf.category,
            "discussion_id": leaf.discussion_id,
            "discussion_target": leaf.display_name,
            "display_name": leaf.display_name,
        }
    return {"display_name": leaf.display_name, "filename": leaf.url_name}


PROBLEM_BODY = {
    "choice": "  <multiplechoiceresponse>\n    <p>Which one is right?</p>\n"
    '    <choicegroup type="MultipleChoice">\n'
    '      <choice correct="false">This one</choice>\n'
    '      <choice correct="true">That one</choice>\n'
    "    </choicegroup>\n  </multiplechoiceresponse>",
    "string": '  <stringresponse answer="the &quot;Abbe&quot; limit" type="ci">\n'
    '    <p>Name it.</p>\n    <textline size="20"/>\n  </stringresponse>',
}


def olx_files(c: Course) -> dict[str, bytes]:
    f: dict[str, str] = {"course.xml": tag("course", {"url_name": c.run, "org": ORG, "course": c.number})}
    start, end = iso(c.start), iso(c.end)
    if c.quoted_dates:  # old XML-course quirk: the JSON-encoded value, quotes included
        start, end = json.dumps(start), json.dumps(end)
    f[f"course/{c.run}.xml"] = tag(
        "course",
        {"display_name": c.display_name, "start": start, "end": end, "language": "en"},
        [tag("chapter", {"url_name": ch.url_name}, indent="  ") for ch in c.chapters]
        + [tag("wiki", {"slug": f"{ORG}.{c.number}.{c.run}"}, indent="  ")],
    )
    for ch in c.chapters:
        f[f"chapter/{ch.url_name}.xml"] = tag(
            "chapter",
            {"display_name": ch.display_name},
            [tag("sequential", {"url_name": sq.url_name}, indent="  ") for sq in ch.sequentials],
        )
        for sq in ch.sequentials:
            sattrs = {"display_name": sq.display_name}
            if sq.fmt:
                sattrs.update(format=sq.fmt, graded="true", due=iso(c.end - timedelta(days=7)))
            f[f"sequential/{sq.url_name}.xml"] = tag(
                "sequential",
                sattrs,
                [tag("vertical", {"url_name": vt.url_name}, indent="  ") for vt in sq.verticals],
            )
            for vt in sq.verticals:
                kids = []
                for leaf in vt.leaves:
                    if leaf.inline:
                        kids.append(
                            tag(leaf.tag, {"url_name": leaf.url_name, **leaf_attrs(c, leaf)}, indent="  ")
                        )
                        continue
                    kids.append(tag(leaf.tag, {"url_name": leaf.url_name}, indent="  "))
                    body: list[str] = []
                    if leaf.tag == "problem":
                        body = [PROBLEM_BODY[leaf.kind]]
                    elif leaf.tag == "video":
                        body = [
                            tag(
                                "source",
                                {"src": json.loads(leaf_attrs(c, leaf)["html5_sources"])[0]},
                                indent="  ",
                            )
                        ]
                    elif leaf.tag == "html":
                        f[f"html/{leaf.url_name}.html"] = (
                            f"<h2>{leaf.display_name}</h2>\n<p>Placeholder text for "
                            f"{c.number}, with “curly quotes” and a café.</p>"
                        )
                    f[f"{leaf.tag}/{leaf.url_name}.xml"] = tag(leaf.tag, leaf_attrs(c, leaf), body)
                f[f"vertical/{vt.url_name}.xml"] = tag("vertical", {"display_name": vt.display_name}, kids)
    f[f"policies/{c.run}/policy.json"] = json.dumps({f"course/{c.run}": policy(c)}, indent=4, sort_keys=True)
    f[f"policies/{c.run}/grading_policy.json"] = json.dumps(
        {
            "GRADER": [
                {"type": "Homework", "min_count": 2, "drop_count": 0, "short_label": "HW", "weight": 0.6},
                {"type": "Exam", "min_count": 1, "drop_count": 0, "short_label": "Exam", "weight": 0.4},
            ],
            "GRADE_CUTOFFS": {"Pass": 0.5},
        }
    )
    f["policies/assets.json"] = "{}"
    if not c.new_style and not c.edge:  # 2014-era old-Mongo exports carried these too
        f["about/overview.html"] = f'<section class="about"><h2>About {c.display_name}</h2></section>'
        f["info/updates.html"] = "<ol><li><h2>March 3, 2014</h2>Welcome!</li></ol>"
    return {k: (v + "\n").encode() for k, v in f.items()}


def course_structure(c: Course) -> bytes:
    """The dump_course_structure JSON: own metadata only, python 2.7 indent style."""
    blocks: dict[str, dict[str, Any]] = {}

    def put(cat: str, loc: str, children: list[str], meta: dict[str, Any]) -> None:
        blocks[loc] = {"category": cat, "children": children, "metadata": meta}

    pol = policy(c)
    put(
        "course",
        c.course_loc,
        [c.loc("chapter", ch.url_name) for ch in c.chapters],
        {k: pol[k] for k in ("display_name", "start", "end", "discussion_topics", "tabs")},
    )
    for ch in c.chapters:
        put(
            "chapter",
            c.loc("chapter", ch.url_name),
            [c.loc("sequential", sq.url_name) for sq in ch.sequentials],
            {"display_name": ch.display_name},
        )
        for sq in ch.sequentials:
            meta: dict[str, Any] = {"display_name": sq.display_name}
            if sq.fmt:
                meta.update(format=sq.fmt, graded=True, due=iso(c.end - timedelta(days=7)))
            put(
                "sequential",
                c.loc("sequential", sq.url_name),
                [c.loc("vertical", vt.url_name) for vt in sq.verticals],
                meta,
            )
            for vt in sq.verticals:
                put(
                    "vertical",
                    c.loc("vertical", vt.url_name),
                    [c.loc(lf.tag, lf.url_name) for lf in vt.leaves],
                    {"display_name": vt.display_name},
                )
                for lf in vt.leaves:
                    m: dict[str, Any] = dict(leaf_attrs(c, lf))
                    m.pop("filename", None)
                    m.pop("youtube", None)
                    if lf.tag == "problem":
                        m["weight"] = None if lf.weight == "null" else float(lf.weight or 0)
                        m["max_attempts"] = 3
                    if lf.tag == "video":
                        m["html5_sources"] = json.loads(m["html5_sources"])
                    put(lf.tag, c.loc(lf.tag, lf.url_name), [], m)
    return json.dumps(blocks, indent=2, sort_keys=True, separators=(", ", ": ")).encode()


def tar_gz(top: str, files: dict[str, bytes]) -> bytes:
    """A reproducible .tar.gz: sorted members, fixed mtime/owner, gzip mtime 0."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted(
            {top} | {f"{top}/{p}".rsplit("/", n)[0] for p in files for n in range(1, p.count("/") + 2)}
        )
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, FIXED_MTIME
            tar.addfile(info)
        for p in sorted(files):
            info = tarfile.TarInfo(f"{top}/{p}")
            info.size, info.mode, info.mtime = len(files[p]), 0o644, FIXED_MTIME
            tar.addfile(info, io.BytesIO(files[p]))
    return gz(raw.getvalue())


def gz(data: bytes, name: str = "") -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out, mtime=0, compresslevel=9) as g:
        g.write(data)
    return out.getvalue()


# ---------------------------------------------------------------------------------- forums


@dataclass
class Post:
    oid: str
    thread: Post | None
    parent: Post | None
    author: Person
    created: datetime
    title: str
    body: str
    commentable_id: str
    up: list[Person]
    children: list[Post] = field(default_factory=list)


TITLES = [
    "Welcome to the course!",
    "Problem with question 2",
    "Résumé of week 1",
    "Can't play the video",
    'Where is the "Abbe" formula from?',
    "Study group (Brisbane)",
]
BODIES = [
    "Thanks, this was **really** helpful.\n\nSee you next week.",
    "Same here \N{EN DASH} any ideas?",
    "I think the answer uses λ/2NA.",
    "Try another browser; it worked for me.",
    "加油! Good luck everyone.",
    "Could staff please confirm?",
]


def oid(rng: random.Random, when: datetime) -> str:
    return f"{int(when.timestamp()):08x}{rng.getrandbits(64):016x}"


def make_forum(rng: random.Random, c: Course, enrollments: list[Enrollment]) -> list[Post]:
    authors = [e.person for e in enrollments if e.course is c and e.activity != "none"]
    topics = [general_topic(c)] + [lf.discussion_id for lf in c.leaves("discussion")]
    posts: list[Post] = []
    n_threads = 4 if c.edge else 6
    in_window = WINDOW[min(c.serial, 1)]
    for i in range(n_threads):
        if i == n_threads - 1:  # one thread created inside the log window
            created = in_window + timedelta(hours=9, minutes=17, seconds=3, milliseconds=250)
        else:
            created = c.start + timedelta(
                days=rng.randrange(1, 20), seconds=rng.randrange(86400), milliseconds=rng.randrange(1000)
            )
        author = authors[(i * 5 + 1) % len(authors)]
        t = Post(
            oid(rng, created),
            None,
            None,
            author,
            created,
            TITLES[i],
            BODIES[i % 6],
            topics[i % len(topics)],
            rng.sample(authors, i % 3),
        )
        posts.append(t)
        for j in range(1 + (i % 3)):
            when = created + timedelta(hours=j + 1, seconds=rng.randrange(3000))
            r = Post(
                oid(rng, when),
                t,
                None,
                authors[(i + j * 3 + 2) % len(authors)],
                when,
                "",
                BODIES[(i + j + 1) % 6],
                t.commentable_id,
                rng.sample(authors, j % 2),
            )
            posts.append(r)
            t.children.append(r)
            if (i + j) % 2 == 0:
                when2 = when + timedelta(minutes=37)
                rep = Post(
                    oid(rng, when2),
                    t,
                    r,
                    authors[(i + 4 * j + 1) % len(authors)],
                    when2,
                    "",
                    BODIES[(i + 2 * j) % 6],
                    t.commentable_id,
                    [],
                )
                posts.append(rep)
                r.children.append(rep)
    return posts


def mongo_date(c: Course, when: datetime, n: int) -> Any:
    ms = int(when.timestamp() * 1000)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}"
    if c.number == "BIOIMG101x":
        return {"$date": ms}
    if c.new_style:
        return {"$date": {"$numberLong": str(ms)}} if n % 4 == 3 else {"$date": stamp + "Z"}
    local = when.astimezone(timezone(timedelta(hours=10 if n % 2 else -5)))
    return {
        "$date": local.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{local.microsecond // 1000:03d}"
        + local.strftime("%z")
    }


def forum_doc(c: Course, p: Post, n: int) -> dict[str, Any]:
    ups = [str(u.id) for u in p.up]
    doc: dict[str, Any] = {
        "_id": {"$oid": p.oid},
        "votes": {
            "up": ups,
            "down": [],
            "up_count": len(ups),
            "down_count": 0,
            "count": len(ups),
            "point": len(ups),
        },
        "visible": True,
        "abuse_flaggers": [],
        "historical_abuse_flaggers": [],
    }
    updated = p.created + timedelta(minutes=n % 5)
    if p.thread is None:
        replies = sum(1 + len(r.children) for r in p.children)
        last = max(
            [p.created]
            + [r.created for r in p.children]
            + [x.created for r in p.children for x in r.children]
        )
        doc.update(
            {
                "thread_type": "question" if n % 3 == 1 else "discussion",
                "comment_count": replies,
                "at_position_list": [],
                "title": p.title,
                "body": p.body,
                "course_id": c.mongoname,
                "commentable_id": p.commentable_id,
                "_type": "CommentThread",
                "anonymous": False,
                "anonymous_to_peers": False,
                "closed": False,
                "author_id": str(p.author.id),
                "author_username": p.author.username,
                "updated_at": mongo_date(c, updated, n),
                "created_at": mongo_date(c, p.created, n),
                "last_activity_at": mongo_date(c, last, n),
            }
        )
        if c.number == "BIOIMG101x":
            doc["tags_array"] = []
        else:
            doc["context"] = "course"
        return doc
    parents = [p.parent] if p.parent else []
    doc.update(
        {
            "parent_ids": [{"$oid": x.oid} for x in parents],
            "at_position_list": [],
            "body": p.body,
            "course_id": c.mongoname,
            "_type": "Comment",
            "endorsed": n % 5 == 2,
            "anonymous": False,
            "anonymous_to_peers": False,
            "author_id": str(p.author.id),
            "comment_thread_id": {"$oid": p.thread.oid},
            "author_username": p.author.username,
            "sk": "-".join([x.oid for x in parents] + [p.oid]),
            "updated_at": mongo_date(c, updated, n),
            "created_at": mongo_date(c, p.created, n),
            "endorsement": None,
            "child_count": len(p.children),
            "depth": len(parents),
        }
    )
    if p.parent:
        doc["parent_id"] = {"$oid": p.parent.oid}
    if doc["endorsed"]:
        doc["endorsement"] = {"user_id": str(p.thread.author.id), "time": mongo_date(c, updated, n)}
    return doc


def spaced(v: Any) -> str:
    """mongoexport 2.4/2.6 layout: '{ "key" : value }'."""
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} : {spaced(x)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, list):
        return "[ " + ", ".join(spaced(x) for x in v) + " ]" if v else "[]"
    return json.dumps(v, ensure_ascii=False)


def write_forum(pkg: Package, c: Course, posts: list[Post]) -> None:
    name = f"database_state/{DUMP_DIR}/{c.discussiontable}.mongo"
    lines = []
    for n, p in enumerate(posts):
        doc = forum_doc(c, p, n)
        compact = c.new_style
        lines.append(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) if compact else spaced(doc))
    good = len(lines)
    if c.new_style:
        lines.insert(0, "2015-06-07T03:12:44.123+0000\tconnected to: 127.0.0.1")
        pkg.bad.append(Bad(name, 1, "not_json", "mongoexport log chatter, not a document"))
        orphan = json.loads(lines[6])
        del orphan["_id"]
        orphan["body"] = "This document has no _id."
        lines.insert(7, json.dumps(orphan, ensure_ascii=False, separators=(",", ":")))
        pkg.bad.append(Bad(name, 8, "missing_id", f"a {orphan['_type']} document without _id"))
    pkg.write(name, ("\n".join(lines) + "\n").encode())
    pkg.counts[name] = {"documents": good}


# ---------------------------------------------------------------------------- tracking logs


@dataclass
class Visit:
    person: Person
    course: Course
    ip: str
    session: str
    old_context: bool  # pre-2015 layout: username, ip, agent, host, session repeated in context
    no_zone: bool = False  # 2012/13 layout: time without a zone


def tstr(v: Visit | None, t: datetime) -> str:
    if v is not None and v.no_zone:
        return t.replace(tzinfo=None).isoformat()
    return t.isoformat()


def context(v: Visit, path: str, course_id: str | None = None) -> dict[str, Any]:
    p, c = v.person, v.course
    cid = c.mongoname if course_id is None else course_id
    if v.old_context:
        return {
            "username": p.username,
            "user_id": p.id,
            "ip": v.ip,
            "org_id": ORG,
            "agent": p.agent,
            "host": c.host,
            "session": v.session,
            "course_id": cid,
            "path": path,
        }
    return {"course_id": cid, "org_id": ORG, "path": path, "user_id": p.id}


def server_page(v: Visit, t: datetime, path: str, referer: str = "") -> dict[str, Any]:
    p, c = v.person, v.course
    ctx = context(v, path)
    ctx["course_user_tags"] = {}
    ev = {
        "username": p.username,
        "host": c.host,
        "event_source": "server",
        "event_type": path,
        "context": ctx,
        "time": tstr(v, t),
        "ip": v.ip,
        "event": json.dumps({"POST": {}, "GET": {}}),
        "agent": p.agent,
        "page": None,
    }
    if not v.old_context:
        ev.update(accept_language="en-AU,en;q=0.8", referer=referer)
    return ev


def browser(
    v: Visit, t: datetime, event_type: str, event: Any, page: str, course_id: str | None = None
) -> dict[str, Any]:
    p = v.person
    return {
        "username": p.username,
        "event_type": event_type,
        "ip": v.ip,
        "agent": p.agent,
        "host": v.course.host,
        "session": v.session,
        "event": event,
        "event_source": "browser",
        "context": context(v, "/event", course_id),
        "time": tstr(v, t),
        "page": page,
    }


def server(
    v: Visit,
    t: datetime,
    event_type: str,
    event: Any,
    page: str | None = "x_module",
    name: bool = False,
    path: str = "",
) -> dict[str, Any]:
    p, c = v.person, v.course
    ev: dict[str, Any] = {"username": p.username, "event_source": "server"}
    if name:
        ev["name"] = event_type
    ev.update(
        {
            "host": c.host,
            "event_type": event_type,
            "context": context(v, path or f"/courses/{c.mongoname}/xblock/handler"),
            "time": tstr(v, t),
            "ip": v.ip,
            "event": event,
            "agent": p.agent,
            "page": page,
        }
    )
    if name:
        ev["session"] = v.session
    return ev


def problem_events(
    rng: random.Random, v: Visit, t: datetime, leaf: Leaf, page: str
) -> list[tuple[datetime, dict[str, Any]]]:
    c = v.course
    correct = rng.random() < 0.6
    state = problem_state(c, leaf, v.person, t, correct)
    aid, answer = next(iter(state["student_answers"].items()))
    loc = c.loc("problem", leaf.url_name)
    posted = json.dumps(f"input_{aid}={quote_plus(answer)}")  # pre-2016: JSON-quoted in the string
    top = 2 if leaf.weight == "2.0" else 1
    out = [(t, browser(v, t, "problem_check", posted, page))]
    t2 = t + timedelta(microseconds=rng.randrange(80_000, 900_000))
    out.append(
        (
            t2,
            server(
                v,
                t2,
                "problem_check",
                {
                    "answers": {aid: answer},
                    "attempts": state["attempts"],
                    "correct_map": state["correct_map"],
                    "grade": top if correct else 0,
                    "max_grade": top,
                    "problem_id": loc,
                    "state": {
                        "correct_map": {},
                        "done": None,
                        "input_state": {aid: {}},
                        "seed": 1,
                        "student_answers": {},
                    },
                    "submission": {
                        aid: {
                            "answer": answer,
                            "correct": correct,
                            "input_type": "choicegroup" if leaf.kind == "choice" else "textline",
                            "question": "Name it.",
                            "response_type": f"{leaf.kind}response",
                            "variant": "",
                        }
                    },
                    "success": "correct" if correct else "incorrect",
                },
            ),
        )
    )
    if not correct and rng.random() < 0.5:
        t3 = t2 + timedelta(seconds=rng.randrange(5, 60))
        out.append((t3, server(v, t3, "showanswer", {"problem_id": loc})))
    return out


def visit_events(rng: random.Random, v: Visit, t: datetime) -> list[tuple[datetime, dict[str, Any]]]:
    c = v.course
    ch = rng.choice(c.chapters)
    sq = rng.choice(ch.sequentials)
    page = c.page(ch, sq)
    path = page.split(c.host, 1)[1]
    out = [(t, server_page(v, t, path, referer=f"https://{c.host}/dashboard"))]
    t += timedelta(seconds=rng.randrange(2, 30), microseconds=rng.randrange(1_000_000))
    seq_id = c.loc("sequential", sq.url_name)
    out.append(
        (
            t,
            browser(
                v, t, "seq_goto", json.dumps({"old": 1, "new": 2, "id": seq_id}, separators=(",", ":")), page
            ),
        )
    )
    for leaf in (lf for vt in sq.verticals for lf in vt.leaves):
        t += timedelta(seconds=rng.randrange(20, 200), microseconds=rng.randrange(1_000_000))
        if rng.random() < 0.15:
            t = t.replace(microsecond=0)  # isoformat() then drops the fraction
        if leaf.tag == "video":
            vid = c.html_id("video", leaf.url_name)
            for et, at in (("play_video", 0), ("pause_video", rng.randrange(30, 400))):
                ev = {"id": vid, "currentTime": at, "code": youtube_id(leaf.url_name)}
                out.append((t, browser(v, t, et, json.dumps(ev, separators=(",", ":")), page)))
                t += timedelta(seconds=at or 1)
        elif leaf.tag == "problem":
            out.extend(problem_events(rng, v, t, leaf, page))
    return out


def enrollment_event(v: Visit, t: datetime, kind: str, mode: str) -> dict[str, Any]:
    c = v.course
    return server(
        v,
        t,
        f"edx.course.enrollment.{kind}",
        {"course_id": c.mongoname, "user_id": v.person.id, "mode": mode},
        page=None,
        name=True,
        path="/change_enrollment",
    )


def forum_event(v: Visit, post: Post) -> dict[str, Any]:
    c = v.course
    return server(
        v,
        post.created,
        "edx.forum.thread.created",
        {
            "body": post.body,
            "anonymous_to_peers": False,
            "category_id": post.commentable_id,
            "title": post.title,
            "truncated": False,
            "anonymous": False,
            "url": f"https://{c.host}/courses/{c.mongoname}/discussion/forum/{post.commentable_id}"
            f"/threads/{post.oid}",
            "commentable_id": post.commentable_id,
            "user_forums_roles": ["Student"],
            "user_course_roles": [],
            "thread_type": "discussion",
            "id": post.oid,
            "group_id": None,
            "options": {"followed": True},
            "category_name": "General",
        },
        page=None,
        name=True,
        path=f"/courses/{c.mongoname}/discussion/threads/create",
    )


def session_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def day_events(
    rng: random.Random,
    day: datetime,
    courses: list[Course],
    enrollments: list[Enrollment],
    forums: dict[str, list[Post]],
    rate: float,
) -> list[tuple[datetime, dict[str, Any]]]:
    out: list[tuple[datetime, dict[str, Any]]] = []
    for e in enrollments:
        c, p = e.course, e.person
        if c not in courses:
            continue
        ip = p.ips[day.day % len(p.ips)]
        old = c.number == "BIOIMG101x" and day == WINDOW[0]
        v = Visit(p, c, ip, session_id(rng), old)
        if e.created.date() == day.date():
            out.append((e.created, enrollment_event(v, e.created, "activated", e.mode)))
        if not e.is_active and c.number == "PSYC1030.1x" and day == WINDOW[1]:
            t = day + timedelta(hours=16, minutes=2, seconds=9, microseconds=443120)
            out.append((t, enrollment_event(v, t, "deactivated", e.mode)))
        if e.activity != "none" and rng.random() < rate and e.created < day + timedelta(hours=20):
            start = day + timedelta(
                seconds=rng.randrange(6 * 3600, 21 * 3600), microseconds=rng.randrange(1_000_000)
            )
            start = max(start, e.created + timedelta(minutes=4, seconds=17))
            out.extend(visit_events(rng, v, start))
    for c in courses:
        for post in forums[c.number]:
            if post.thread is None and post.created.date() == day.date():
                old = c.number == "BIOIMG101x" and day == WINDOW[0]
                v = Visit(post.author, c, post.author.ips[0], session_id(rng), old)
                out.append((post.created, forum_event(v, post)))
    return out


def special_events(
    rng: random.Random, people: list[Person], courses: dict[str, Course]
) -> dict[str, list[tuple[datetime, dict[str, Any]]]]:
    """One-off event shapes, keyed by the day file they belong in."""
    bio, psyc = courses["BIOIMG101x"], courses["PSYC1030.1x"]
    ada, learner, staff = people[1], people[22], people[0]
    out: dict[str, list[tuple[datetime, dict[str, Any]]]] = {d.date().isoformat(): [] for d in WINDOW}
    # 2012/13 layout: no zone in time, and username/ip/agent/host/session repeated in context.
    v = Visit(ada, bio, ada.ips[0], session_id(rng), old_context=True, no_zone=True)
    ch = bio.chapters[0]
    t = datetime(2015, 5, 30, 6, 29, 13, 583880, tzinfo=UTC)
    out["2015-05-30"].append((t, server_page(v, t, bio.page(ch, ch.sequentials[0]).split(bio.host, 1)[1])))
    t = datetime(2015, 5, 30, 6, 29, 40, 100007, tzinfo=UTC)
    out["2015-05-30"].append(
        (
            t,
            browser(
                v,
                t,
                "seq_goto",
                json.dumps(
                    {"old": 1, "new": 2, "id": bio.loc("sequential", ch.sequentials[0].url_name)},
                    separators=(",", ":"),
                ),
                bio.page(ch, ch.sequentials[0]),
            ),
        )
    )
    # Anonymous visitor on a course about page: blank username, null user_id.
    t = datetime(2015, 5, 30, 11, 2, 3, 4005, tzinfo=UTC)
    anon = replace(people[1], username="", id=0, agent=AGENTS[2])
    ev = server_page(Visit(anon, bio, "203.0.113.9", "", True), t, f"/courses/{bio.mongoname}/about")
    ev["context"]["user_id"] = None  # the pre-2015 layout, like every BIOIMG101x event of this day
    out["2015-05-30"].append((t, ev))
    # Browser event with an empty context.course_id; the course is only in the page URL.
    t = datetime(2015, 5, 31, 12, 40, 1, 771002, tzinfo=UTC)
    ch = psyc.chapters[1]
    v = Visit(learner, psyc, learner.ips[0], session_id(rng), False)
    out["2015-05-31"].append(
        (t, browser(v, t, "page_close", "", psyc.page(ch, ch.sequentials[0]), course_id=""))
    )
    # Keys a document store cannot take as they are ("$..." and dotted).
    t = datetime(2015, 5, 31, 12, 41, 9, tzinfo=UTC)
    ev = browser(
        v,
        t,
        "edx.ui.lms.link_clicked",
        {
            "current_url": psyc.page(ch, ch.sequentials[0]),
            "target_url": "https://www.example.org/reading",
            "$set": 1,
            "a.b": 2,
        },
        psyc.page(ch, ch.sequentials[0]),
    )
    ev = {"username": ev.pop("username"), "name": "edx.ui.lms.link_clicked", **ev}
    out["2015-05-31"].append((t, ev))
    # Mobile: no fraction in time, ip "", filed by context.received_at (the next day).
    t = datetime(2015, 5, 31, 23, 58, 12, tzinfo=UTC)
    video = psyc.leaves("video")[0]
    out["2015-06-01"].append(
        (
            datetime(2015, 6, 1, 0, 0, 3, tzinfo=UTC),
            {
                "username": learner.username,
                "event_source": "mobile",
                "name": "edx.video.played",
                "event_type": "play_video",
                "time": t.isoformat(),
                "agent": MOBILE_AGENT,
                "page": None,
                "host": psyc.host,
                "ip": "",
                "event": json.dumps({"code": "mobile", "id": video.url_name, "currentTime": 114}),
                "context": {
                    "course_id": psyc.mongoname,
                    "org_id": ORG,
                    "path": "/event_mobile",
                    "user_id": learner.id,
                    "received_at": "2015-06-01T00:00:03.512000+00:00",
                    "application": {"name": "edx.mobileapp.iOS", "version": "1.0.02"},
                    "client": {"device": {"model": "iPad"}, "os": {"name": "iOS", "version": "8.3"}},
                    "component": "videoplayer",
                    "module": {
                        "display_name": video.display_name,
                        "usage_key": psyc.loc("video", video.url_name),
                    },
                },
            },
        )
    )
    # Staff checking progress from the server itself (loopback IPv6).
    t = datetime(2015, 6, 1, 7, 15, 0, 250000, tzinfo=UTC)
    out["2015-06-01"].append(
        (
            t,
            server_page(
                Visit(staff, psyc, "::1", session_id(rng), False), t, f"/courses/{psyc.mongoname}/progress"
            ),
        )
    )
    # Site front page, logged out: user_id "" and an empty course_id.
    t = datetime(2015, 6, 1, 8, 1, 30, 120000, tzinfo=UTC)
    ev = server_page(Visit(anon, psyc, "192.0.2.99", "", False), t, "/")
    ev["context"].update(course_id="", user_id="")
    out["2015-06-01"].append((t, ev))
    return out


def problem_graded(v: Visit, t: datetime) -> str:
    """A browser problem_graded event long enough to be cut at 2043 characters."""
    c = v.course
    leaf = c.leaves("problem")[0]
    aid = f"{c.html_id('problem', leaf.url_name)}_2_1"
    html = '<div class="problem"><p>Which one is right?</p>' + "<label>choice</label>" * 120 + "</div>"
    ev = browser(
        v,
        t,
        "problem_graded",
        json.dumps([f"input_{aid}=choice_1", html]),
        c.page(c.chapters[0], c.chapters[0].sequentials[-1]),
    )
    return json.dumps(ev)


def write_log(
    pkg: Package,
    name: str,
    events: list[tuple[datetime, dict[str, Any]]],
    bad: dict[int, tuple[bytes, str, str]],
    compress: bool,
) -> None:
    """Serialise events in time order and put the bad lines at the given 1-based positions."""
    lines: list[bytes] = [json.dumps(ev).encode() for _, ev in sorted(events, key=lambda x: x[0])]
    rel = f"clickstream_logs/{CLICK_DIR}/{name}" + (".gz" if compress else "")
    for pos in sorted(bad):
        text, kind, detail = bad[pos]
        lines.insert(pos - 1, text)
        pkg.bad.append(Bad(rel, pos, kind, detail))
    data = b"\n".join(lines) + b"\n"
    pkg.write(rel, gz(data, name + ".gz") if compress else data)
    pkg.counts[rel] = {"lines": len(lines), "events": len(events)}


def handler_events(
    people: list[Person], courses: dict[str, Course], day: datetime, only: list[Course]
) -> list[tuple[datetime, dict[str, Any]]]:
    """Implicit events of the AJAX calls to components' handlers, whose `event_type` holds the
    component's url_name (what the course-event tables count). They come after the day's other
    events and use no random numbers, so the rest of the package is as before."""
    staff = people[0]
    out: list[tuple[datetime, dict[str, Any]]] = []
    t = day.replace(hour=23, minute=30, second=0, microsecond=250000)
    for c in only:
        v = Visit(staff, c, staff.ips[0], "0123456789abcdef0123456789abcdef", False)
        leaves = [leaf for sq in c.chapters[0].sequentials for vt in sq.verticals for leaf in vt.leaves]
        for leaf in leaves:
            if leaf.tag not in ("problem", "video"):
                continue
            loc = c.loc(leaf.tag, leaf.url_name)
            block = loc if c.new_style else loc.replace("://", ":;_;_").replace("/", ";_")
            handler = "xmodule_handler/problem_get" if leaf.tag == "problem" else "transcript/translation/en"
            path = f"/courses/{c.mongoname}/xblock/{block}/handler/{handler}"
            for _ in range(2 if leaf.tag == "problem" else 1):
                out.append((t, server_page(v, t, path)))
                t += timedelta(seconds=7)
    return out


def write_logs(
    pkg: Package,
    rng: random.Random,
    people: list[Person],
    courses: list[Course],
    enrollments: list[Enrollment],
    forums: dict[str, list[Post]],
) -> None:
    by_number = {c.number: c for c in courses}
    prod = [c for c in courses if not c.edge]
    edge = [c for c in courses if c.edge]
    special = special_events(rng, people, by_number)
    days = {
        d.date().isoformat(): day_events(rng, d, prod, enrollments, forums, 0.35)
        + special[d.date().isoformat()]
        for d in WINDOW
    }
    edge_events = day_events(rng, WINDOW[1], edge, enrollments, forums, 0.9)
    days["2015-06-01"] += handler_events(people, by_number, WINDOW[2], prod)
    edge_events += handler_events(people, by_number, WINDOW[1], edge)

    yara = people[27]
    bio = by_number["BIOIMG101x"]
    v = Visit(yara, bio, yara.ips[0], session_id(rng), False)
    truncated = problem_graded(v, datetime(2015, 5, 31, 9, 12, 44, 100200, tzinfo=UTC))
    syslog_t = datetime(2015, 5, 31, 8, 15, 48, 310440, tzinfo=UTC)
    syslog = json.dumps(server_page(v, syslog_t, f"/courses/{bio.mongoname}/info"))
    demo = by_number["DEMO101x"]
    w = Visit(people[2], demo, "2001:db8::1f", session_id(rng), False)
    bad_utf8 = json.dumps(
        server_page(w, datetime(2015, 5, 31, 6, 0, 1, 5, tzinfo=UTC), f"/courses/{demo.mongoname}/courseware")
    ).encode()
    bad_utf8 = bad_utf8.replace(b"Mozilla/5.0", b"Mozilla/5.0 \xc3\x28\xff\xfe", 1)

    write_log(
        pkg,
        "uqx-edx-events-2015-05-30.log",
        days["2015-05-30"],
        {
            1: (
                b"# sample tracking log: comment lines like this one occur in test fixtures",
                "comment",
                "a '#' comment line",
            ),
            17: (
                b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                "not_json",
                "an HTML error page, not JSON",
            ),
            40: (b"", "blank", "an empty line"),
        },
        compress=False,
    )
    write_log(
        pkg,
        "uqx-edx-events-2015-05-31.log",
        days["2015-05-31"],
        {
            23: (
                truncated[:2043].encode(),
                "truncated",
                "a problem_graded event cut at 2043 characters, inside the event string",
            ),
            51: (
                b"May 31 08:15:48 localhost " + syslog.encode(),
                "syslog_prefix",
                "a 26-character syslog prefix before a valid event (recoverable)",
            ),
        },
        compress=True,
    )
    write_log(pkg, "uqx-edx-events-2015-06-01.log", days["2015-06-01"], {}, compress=True)
    write_log(
        pkg,
        "uqx-edge-events-2015-05-31.log",
        edge_events,
        {
            9: (
                bad_utf8,
                "invalid_utf8",
                "bytes C3 28 FF FE inside the agent string; valid JSON once decoded with errors='replace'",
            )
        },
        compress=False,
    )


# ---------------------------------------------------------------------------------- driver


def build(root: Path) -> Package:
    if root.exists():
        if any(root.iterdir()) and not (root / "database_state").exists():
            raise SystemExit(f"refusing to replace {root}: it does not look like sample data")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    rng = random.Random(SEED)
    pkg = Package(root)
    people = make_people(rng)
    courses = make_courses()
    enrollments = make_enrollments(rng, people, courses)
    assign_certificates(rng, enrollments)
    module_id = [52_000_000]
    forums: dict[str, list[Post]] = {}
    for c in courses:
        write_tables(pkg, rng, c, enrollments, make_modules(rng, c, enrollments, module_id))
        forums[c.number] = make_forum(rng, c, enrollments)
        write_forum(pkg, c, forums[c.number])
        files = olx_files(c)
        if c.tar_top is None:
            for rel, data in files.items():
                pkg.write(f"database_state/{DUMP_DIR}/{c.prefix}/{rel}", data)
        else:
            pkg.write(
                f"database_state/{DUMP_DIR}/{c.prefix}-course-{c.suffix}.xml.tar.gz", tar_gz(c.tar_top, files)
            )
        if not c.edge:
            pkg.write(f"database_state/{DUMP_DIR}/{c.csjson}", course_structure(c))
    write_logs(pkg, rng, people, courses, enrollments, forums)
    for kind, target in (("clickstream_logs", CLICK_DIR), ("database_state", DUMP_DIR)):
        os.symlink(target, root / kind / "latest")
    (root / ".gitattributes").write_text("# byte-exact sample data: no EOL conversion\n* -text\n")
    manifest = {
        "bad_input": [b.__dict__ for b in sorted(pkg.bad, key=lambda b: (b.file, b.line))],
        "counts": dict(sorted(pkg.counts.items())),
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return pkg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=SUMMARY)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--list-bad", action="store_true", help="print the deliberately bad lines and rows")
    args = parser.parse_args(argv)
    pkg = build(args.out)
    if args.list_bad:
        for b in sorted(pkg.bad, key=lambda b: (b.file, b.line)):
            sys.stdout.write(f"{b.file}\t{b.line}\t{b.kind}\t{b.detail}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
