"""A generator of a large, realistic, entirely invented daily edX tracking log.

    python -m bench.generate_logs OUT.log.gz --events 1000000 [--users 20000] [--courses 12]
        [--seed 42] [--bad-every 20000] [--date 2024-01-06]

writes one day's events, one JSON object per line as Python `json.dumps` writes them (`", "` and
`": "` separators, non-ASCII `\\uXXXX`-escaped), gzip-compressed if OUT ends in `.gz`, plain
otherwise. The shapes follow the shared docs (edx-data-package.md, section 4):

* implicit server page events (`event_type` the request path, `event` the JSON-encoded string
  `{"POST": {}, "GET": {}}`, a few with POST data, cut at 512 characters when long);
* browser `play_video`/`pause_video`/`seek_video`/`load_video`/`speed_change_video`, `seq_goto`/
  `seq_next`/`seq_prev`, `page_close` (`""`), `problem_show`, `problem_graded` (big) with a string
  `event` in the browser's compact JSON; browser `problem_check` with the URL-encoded answers,
  JSON-quoted for old-style courses, bare for new ones; `edx.ui.lms.*` with an object `event`;
* server `problem_check` with a big object `event` (answers, correct_map, state, submission),
  `showanswer`, `edx.course.enrollment.activated`, `edx.forum.*` (`name` and an object `event`);
* mobile events (`edx.video.*`, `context.application`/`client`/`received_at`, `time` without a
  fraction, `ip` mostly empty, a few from an earlier day);
* pre-2015-style events repeating `username`, `ip`, `agent`, `host`, `session` in `context`;
* `context.course_id` in both id styles (bench.generate.course_for: even courses `course-v1:`, odd
  ones `Org/Course/Run`), some events with an empty `course_id` and the course only in `page`,
  anonymous events (no username, `user_id` null) outside courses.

People browse in sessions: each event comes from one of a pool of open sessions, and a session keeps
its user, IP address, agent and session id, so addresses repeat heavily. Users keep a home address
for most sessions: public IPv4 from a few thousand networks (most), IPv6, private addresses, and
`""` or `::1` on mobile. `time` is `...ffffff+00:00` within the day, increasing within a session but
not along the file (sessions interleave, as the Hadoop reducer's order does).

Every `--bad-every` events a bad line is inserted, in turn: an HTML error page, a line cut at 2,043
characters, a blank line, a `#` comment, a line with invalid UTF-8 bytes. So a file holds `--events`
good events plus `--events // --bad-every` bad lines.

Everything comes from `random.Random(seed)` (the same seed gives the same bytes) and lines are
written in chunks, so memory stays constant whatever `--events` (it grows with `--users` only). Users
are the database generator's (`bench.generate`): same ids and user names for the same seed. All
names, addresses, courses and texts are made up.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from bench.generate import (
    FIRST_USER_ID,
    Catalogue,
    Course,
    Problem,
    build_catalogue,
    course_for,
    is_enrolled,
)
from bench.generate import _person as person  # the database generator's users, for consistency

DEFAULT_DATE = "2024-01-06"
DEFAULT_USERS = 20_000
DEFAULT_COURSES = 12
DEFAULT_BAD_EVERY = 20_000
CHUNK_LINES = 5_000
DAY_US = 86_400 * 1_000_000
TRUNCATE_AT = 2043  # a cut seen in real logs (pipeline comment: "2043 for others")
IMPLICIT_MAX = 512  # implicit events' `event` string is cut at 512 characters

_COMPACT = json.JSONEncoder(separators=(",", ":"))  # the browser's JSON.stringify
_HOST = "courses.example-edx.org"
_LMS_HOSTS = ("lms-web-01.internal", "lms-web-02.internal", "lms-web-03.internal")
_AGENTS = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        0.34,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/119.0.0.0 Safari/537.36",
        0.12,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Safari/605.1.15",
        0.09,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", 0.08),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
        0.08,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        0.04,
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1.2 Mobile/15E148 Safari/604.1",
        0.09,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Mobile Safari/537.36",
        0.12,
    ),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko", 0.04),
)
_MOBILE_APPS = (
    ("edX/org.edx.mobile (4.2.1; OS Version 17.1.2 (Build 21B101))", "edx.mobileapp.iOS", "4.2.1"),
    ("Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A.220624.014) edX/org.edx.mobile/4.0.3",
     "edx.mobileapp.android", "4.0.3"),
)  # fmt: skip
_LANGUAGES = (
    "en-US,en;q=0.9",
    "en-GB,en;q=0.9,en-US;q=0.8",
    "es-ES,es;q=0.9,en;q=0.8",
    "zh-CN,zh;q=0.9",
    "hi-IN,hi;q=0.9,en;q=0.8",
    "pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7",
    "fr-FR,fr;q=0.9,en;q=0.8",
    "de-DE,de;q=0.9,en;q=0.8",
    "en-AU,en;q=0.9",
    "",
)
# Share of events by hour of the day (UTC; a world-wide audience, evening peaks in the Americas).
_HOURS = (5, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 6, 6, 7, 7, 7, 7, 6, 6, 6, 6, 6, 5)
# Public IPv4 first octets drawn from (no private, loopback, link-local, CGNAT, test or multicast).
_EXCLUDED_OCTETS = {0, 10, 100, 127, 169, 172, 192, 198, 224}
_PUBLIC_OCTETS = tuple(o for o in range(1, 224) if o not in _EXCLUDED_OCTETS)
_IPV6_PREFIXES = (
    "2001:4860", "2400:cb00", "2401:4900", "2402:3a80", "2405:201", "2406:da18", "2409:8a1e",
    "2600:1700", "2601:18c", "2602:306", "2603:8000", "2604:2d80", "2605:e000", "2606:4700",
    "2607:fb90", "2800:810", "2803:9800", "2a00:23c7", "2a01:cb1d", "2a02:c7f", "2a02:8084",
    "2a03:2880", "2c0f:f8f0",
)  # fmt: skip
_WORDS = (
    "energy", "mass", "velocity", "friction", "enzyme", "protein", "matrix", "vector", "gradient",
    "entropy", "photon", "market", "demand", "supply", "theorem", "proof", "river", "climate",
    "carbon", "neuron", "signal", "voltage", "current", "because", "therefore", "the", "a", "of",
    "is", "increases", "decreases", "constant", "café", "naïve", "Straße", "ñandú", "東京", "Привет",
    "question", "week", "lecture", "homework", "exam", "deadline", "thanks", "help", "confused",
)  # fmt: skip
_BAD_KINDS = ("html", "truncated", "blank", "comment", "utf8")


@dataclass(frozen=True, slots=True)
class User:
    index: int
    user_id: int
    username: str
    home_ip: str
    work_ip: str
    agent: str
    language: str
    mobile: bool  # uses the mobile app for some sessions
    courses: tuple[int, ...]


@dataclass(slots=True)
class Session:
    user: User
    course: int
    ip: str
    agent: str
    session_id: str
    now: int  # microseconds into the day
    left: int  # events still to come
    mobile: bool
    old_context: bool  # pre-2015 style: username, ip, agent, host, session repeated in context
    chapter: int = 0
    sequence: int = 0
    position: int = 1
    video_time: float = 0.0


@dataclass(frozen=True)
class Outline:
    """A course's blocks, arranged as chapters of sequences (each with its videos and problems)."""

    course: Course
    chapters: tuple[str, ...]
    sequences: tuple[tuple[str, ...], ...]  # per chapter
    videos: tuple[str, ...]
    problems: tuple[Problem, ...]
    titles: dict[str, str] = field(default_factory=dict)


@dataclass
class LogStats:
    lines: int = 0
    events: int = 0
    bad_lines: int = 0
    bytes_uncompressed: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


def _outline(course: Course, catalogue: Catalogue, rng: random.Random) -> Outline:
    chapters = catalogue.blocks["chapter"]
    sequences = catalogue.blocks["sequential"]
    per = max(1, len(sequences) // max(1, len(chapters)))
    grouped = tuple(sequences[i * per : (i + 1) * per] or sequences[:1] for i in range(len(chapters)))
    titles = {
        p.block: f"Problem {n + 1}: {' '.join(rng.choice(_WORDS[:24]) for _ in range(rng.randint(1, 4)))}"
        for n, p in enumerate(catalogue.problems)
    }
    return Outline(course, chapters, grouped, catalogue.blocks["video"], catalogue.problems, titles)


class LogWriter:
    """Draws the events of one day; `lines()` yields them serialised, bad lines included."""

    def __init__(
        self,
        seed: int = 42,
        users: int = DEFAULT_USERS,
        courses: int = DEFAULT_COURSES,
        day: str = DEFAULT_DATE,
        bad_every: int = DEFAULT_BAD_EVERY,
    ) -> None:
        if users < 1 or courses < 1 or bad_every < 0:
            raise ValueError("users and courses must be >= 1, bad_every >= 0")
        self.rng = random.Random(seed * 7_777_777 + 11)
        self.seed = seed
        self.day = date.fromisoformat(day)
        self.prefix = f"{self.day.isoformat()}T"
        self.bad_every = bad_every
        self.stats = LogStats()
        outline_rng = random.Random(seed)
        self.outlines = [
            _outline(course_for(i), build_catalogue(course_for(i), random.Random(seed * 1_000_003 + i)), outline_rng)
            for i in range(courses)
        ]  # fmt: skip
        self.networks = [self._network() for _ in range(max(300, users // 3))]
        self.agent_weights = [w for _, w in _AGENTS]
        self.users = [self._user(i, users, courses) for i in range(users)]
        self.pool = [self._session() for _ in range(max(20, min(2_000, users // 8)))]

    # -- people and addresses --------------------------------------------------------------------

    def _network(self) -> tuple[int, int, int]:
        rng = self.rng
        return (rng.choice(_PUBLIC_OCTETS), rng.randrange(1, 255), rng.randrange(256))

    def _public_ipv4(self) -> str:
        rng = self.rng
        # Skewed: a few big ISPs and campus networks hold many users.
        a, b, c = self.networks[min(int(len(self.networks) * rng.random() ** 2.2), len(self.networks) - 1)]
        return f"{a}.{b}.{(c + rng.randrange(4)) % 256}.{rng.randrange(1, 255)}"

    def _ip(self) -> str:
        rng = self.rng
        draw = rng.random()
        if draw < 0.86:
            return self._public_ipv4()
        if draw < 0.95:
            hextets = ":".join(f"{rng.getrandbits(16):x}" for _ in range(6))
            return f"{rng.choice(_IPV6_PREFIXES)}:{hextets}"
        if draw < 0.97:
            return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if draw < 0.99:
            return f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        return f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"

    def _user(self, index: int, users: int, courses: int) -> User:
        rng = self.rng
        p = person(self.seed, index)
        taken = tuple(c for c in range(courses) if is_enrolled(index, c, courses)) or (index % courses,)
        return User(
            index,
            FIRST_USER_ID + index,
            p.username,
            self._ip(),
            self._ip(),
            rng.choices([a for a, _ in _AGENTS], self.agent_weights)[0],
            rng.choice(_LANGUAGES),
            rng.random() < 0.15,
            taken,
        )

    def _session(self) -> Session:
        rng = self.rng
        user = self.users[min(int(len(self.users) * rng.random() ** 1.6), len(self.users) - 1)]
        mobile = user.mobile and rng.random() < 0.6
        draw = rng.random()
        if mobile:
            ip = "" if draw < 0.85 else ("::1" if draw < 0.9 else user.home_ip)
            agent = rng.choice(_MOBILE_APPS)[0]
        else:
            ip = user.home_ip if draw < 0.78 else user.work_ip if draw < 0.88 else self._ip()
            agent = user.agent
        hour = rng.choices(range(24), _HOURS)[0]
        course = rng.choice(user.courses)
        outline = self.outlines[course]
        s = Session(
            user,
            course,
            ip,
            agent,
            f"{rng.getrandbits(128):032x}",
            hour * 3_600_000_000 + rng.randrange(3_600_000_000),
            max(1, int(rng.expovariate(1 / 40))),
            mobile,
            rng.random() < 0.2,
        )
        s.chapter = rng.randrange(len(outline.chapters))
        s.sequence = rng.randrange(len(outline.sequences[s.chapter]))
        return s

    # -- common parts ----------------------------------------------------------------------------

    def _time(self, micros: int) -> str:
        seconds, us = divmod(micros, 1_000_000)
        minutes, ss = divmod(seconds, 60)
        hh, mm = divmod(minutes, 60)
        if us:
            return f"{self.prefix}{hh:02d}:{mm:02d}:{ss:02d}.{us:06d}+00:00"
        return f"{self.prefix}{hh:02d}:{mm:02d}:{ss:02d}+00:00"

    def _courseware_url(self, s: Session) -> str:
        o = self.outlines[s.course]
        chapter = o.chapters[s.chapter]
        sequence = o.sequences[s.chapter][s.sequence]
        return f"/courses/{o.course.course_id}/courseware/{chapter}/{sequence}/"

    def _context(self, s: Session, path: str, course: bool = True, **extra: Any) -> dict[str, Any]:
        o = self.outlines[s.course]
        course_id = o.course.course_id if course else ""
        u = s.user
        if s.old_context:
            ctx: dict[str, Any] = {
                "username": u.username,
                "course_user_tags": {},
                "user_id": u.user_id,
                "ip": s.ip,
                "org_id": o.course.org if course else "",
                "agent": s.agent,
                "host": _HOST,
                "session": s.session_id,
                "course_id": course_id,
                "path": path,
            }
        else:
            ctx = {"course_user_tags": {}, "user_id": u.user_id, "org_id": o.course.org if course else ""}
            ctx["course_id"] = course_id
            ctx["path"] = path
        ctx.update(extra)
        return ctx

    def _envelope(
        self, s: Session, event_type: str, source: str, event: Any, context: dict[str, Any], page: Any
    ) -> dict[str, Any]:
        u = s.user
        out: dict[str, Any] = {"username": u.username, "event_type": event_type, "ip": s.ip, "agent": s.agent}
        out["host"] = _HOST if source == "browser" or self.rng.random() < 0.7 else self.rng.choice(_LMS_HOSTS)
        if source == "browser" or event_type.startswith("edx.course.enrollment"):
            out["session"] = s.session_id
        if not s.old_context:  # both fields were added in February 2015
            out["referer"] = f"https://{_HOST}{self._courseware_url(s)}"
            out["accept_language"] = u.language
        out["event"] = event
        out["event_source"] = source
        out["context"] = context
        out["time"] = self._time(s.now)
        out["page"] = page
        return out

    def _module(self, usage_key: str, title: str) -> dict[str, str]:
        return {"display_name": title, "usage_key": usage_key}

    # -- the event kinds -------------------------------------------------------------------------

    def _implicit(self, s: Session) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        o = self.outlines[s.course]
        cid = o.course.course_id
        draw = rng.random()
        get: dict[str, list[str]] = {}
        post: dict[str, list[str]] = {}
        course = True
        if draw < 0.55:
            path = self._courseware_url(s)
        elif draw < 0.65:
            path = f"/courses/{cid}/info"
        elif draw < 0.72:
            path = f"/courses/{cid}/progress"
        elif draw < 0.80:
            path = f"/courses/{cid}/discussion/forum/"
            if rng.random() < 0.4:
                get = {"ajax": ["1"], "page": [str(rng.randint(1, 9))], "sort_key": ["activity"]}
        elif draw < 0.90:
            problem = rng.choice(o.problems)
            usage = o.course.module_id("problem", problem.block)
            path = f"/courses/{cid}/xblock/{usage}/handler/xmodule_handler/problem_get"
        elif draw < 0.94:
            problem = rng.choice(o.problems)
            usage = o.course.module_id("problem", problem.block)
            path = f"/courses/{cid}/xblock/{usage}/handler/xmodule_handler/problem_check"
            prefix = o.course.input_prefix(problem.block)
            for n, kind in enumerate(problem.inputs):
                post[f"input_{prefix}_{n + 2}_1"] = [self._answer_text(kind)]
        else:
            path = rng.choice(("/dashboard", "/account/settings", "/courses", "/"))
            course = False
        event = json.dumps({"POST": post, "GET": get})
        if len(event) > IMPLICIT_MAX:
            event = event[:IMPLICIT_MAX]
        anonymous = not course and rng.random() < 0.5
        ctx = self._context(s, path, course)
        record = self._envelope(s, path, "server", event, ctx, None)
        if anonymous:
            record["username"] = ""
            ctx["user_id"] = None
        return "implicit", record

    def _page(self, s: Session) -> str:
        return f"https://{_HOST}{self._courseware_url(s)}"

    def _video(self, s: Session) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        o = self.outlines[s.course]
        video = o.videos[(s.chapter * 7 + s.sequence) % len(o.videos)]
        vid = video if o.course.new_style else f"i4x-{o.course.org}-{o.course.number}-video-{video}"
        code = (
            "html5"
            if rng.random() < 0.6
            else "".join(rng.choice("abcdefghijkLMNOPQ0123456789_-") for _ in range(11))
        )
        kind = rng.choices(
            ("play_video", "pause_video", "load_video", "seek_video", "speed_change_video"),
            (0.35, 0.30, 0.2, 0.1, 0.05),
        )[0]
        s.video_time = round(s.video_time + rng.uniform(0, 90), 3)
        data: dict[str, Any] = {"id": vid, "currentTime": s.video_time, "code": code}
        if kind == "seek_video":
            new = round(max(0.0, s.video_time + rng.uniform(-60, 120)), 3)
            data = {"id": vid, "old_time": s.video_time, "new_time": new, "type": "onSlideSeek", "code": code}
            s.video_time = new
        elif kind == "speed_change_video":
            data = {
                "id": vid,
                "current_time": s.video_time,
                "old_speed": "1.0",
                "new_speed": "1.50",
                "code": code,
            }
        elif kind == "load_video":
            data = {"id": vid, "code": code}
        if not s.old_context and rng.random() < 0.5:
            data["duration"] = 600.0 + (s.chapter * 37 % 900)
        ctx = self._context(s, "/event")
        if not s.old_context:
            ctx["module"] = self._module(o.course.module_id("video", video), "Lecture video")
        record = self._envelope(s, kind, "browser", _COMPACT.encode(data), ctx, self._page(s))
        if not s.old_context and rng.random() < 0.5:
            record["name"] = {"play_video": "edx.video.played", "pause_video": "edx.video.paused"}.get(
                kind, kind
            )
        return kind, record

    def _sequence(self, s: Session) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        o = self.outlines[s.course]
        kind = rng.choices(("seq_goto", "seq_next", "seq_prev"), (0.5, 0.4, 0.1))[0]
        old = s.position
        s.position = max(
            1, old + (1 if kind == "seq_next" else -1 if kind == "seq_prev" else rng.randint(-3, 4))
        )
        sequence = o.sequences[s.chapter][s.sequence]
        data = {"old": old, "new": s.position, "id": o.course.module_id("sequential", sequence)}
        if not s.old_context and rng.random() < 0.5:
            data.update(current_tab=old, tab_count=8, target_tab=s.position, widget_placement="top")
        record = self._envelope(
            s, kind, "browser", _COMPACT.encode(data), self._context(s, "/event"), self._page(s)
        )
        if not s.old_context:
            record["name"] = {"seq_goto": "edx.ui.lms.sequence.tab_selected", "seq_next": "edx.ui.lms.sequence.next_selected"}.get(kind, "edx.ui.lms.sequence.previous_selected")  # fmt: skip
        if rng.random() < 0.3:  # moving on
            s.sequence = rng.randrange(len(o.sequences[s.chapter]))
            s.video_time = 0.0
        return kind, record

    def _page_close(self, s: Session) -> tuple[str, dict[str, Any]]:
        return "page_close", self._envelope(
            s, "page_close", "browser", "", self._context(s, "/event"), self._page(s)
        )

    def _answer_text(self, kind: str) -> str:
        rng = self.rng
        if kind == "choice":
            return f"choice_{rng.randint(0, 4)}"
        if kind == "multi":
            return f"choice_{rng.randint(0, 4)}"
        if kind == "numeric":
            return str(round(rng.uniform(-100, 1000), rng.choice((0, 1, 2))))
        if kind == "formula":
            return rng.choice(("m*g*h", "sqrt(x^2+y^2)", "1/2*m*v^2", "(a+b)/2", "2*pi*r"))
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 12)))

    def _browser_check(self, s: Session) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        o = self.outlines[s.course]
        problem = rng.choice(o.problems)
        prefix = o.course.input_prefix(problem.block)
        form = "&".join(
            f"input_{prefix}_{n + 2}_1={quote(self._answer_text(kind), safe='')}"
            for n, kind in enumerate(problem.inputs)
        )
        event = json.dumps(form) if not o.course.new_style else form
        return "problem_check", self._envelope(s, "problem_check", "browser", event, self._context(s, "/event"), self._page(s))  # fmt: skip

    def _graded(self, s: Session) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        o = self.outlines[s.course]
        problem = rng.choice(o.problems)
        prefix = o.course.input_prefix(problem.block)
        form = "&".join(f"input_{prefix}_{n + 2}_1={quote(self._answer_text(k), safe='')}" for n, k in enumerate(problem.inputs))  # fmt: skip
        paragraphs = "".join(
            f"<p>{' '.join(rng.choice(_WORDS) for _ in range(rng.randint(8, 40)))}</p>\n"
            for _ in range(2 + int(26 * rng.random() ** 3))
        )
        html = (
            f'<h2 class="problem-header">{o.titles[problem.block]}</h2>\n<div class="problem-progress"></div>\n'
            f'<div class="problem">{paragraphs}<span><input type="text" name="input_{prefix}_2_1" '
            f'id="input_{prefix}_2_1" value="" class="correct"/></span></div>\n'
            '<div class="action"><button class="check Check">Check</button></div>'
        )
        event = _COMPACT.encode([form, html])
        return "problem_graded", self._envelope(s, "problem_graded", "browser", event, self._context(s, "/event"), self._page(s))  # fmt: skip

    def _server_check(self, s: Session) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        o = self.outlines[s.course]
        problem = rng.choice(o.problems)
        prefix = o.course.input_prefix(problem.block)
        usage = o.course.module_id("problem", problem.block)
        keys = [f"{prefix}_{n + 2}_1" for n in range(len(problem.inputs))]
        answers = {k: self._answer_text(kind) for k, kind in zip(keys, problem.inputs, strict=True)}
        correct = {k: rng.random() < 0.62 for k in keys}
        correct_map = {
            k: {"hint": "", "hintmode": None, "correctness": "correct" if correct[k] else "incorrect",
                "msg": "", "npoints": None, "queuestate": None}
            for k in keys
        }  # fmt: skip
        attempts = rng.randint(1, 4)
        grade = sum(correct.values())
        question = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 60)))
        submission = {
            k: {
                "question": question,
                "answer": answers[k],
                "response_type": {"choice": "multiplechoiceresponse", "numeric": "numericalresponse",
                                  "formula": "formularesponse"}.get(kind, "stringresponse"),
                "input_type": {"choice": "choicegroup", "multi": "checkboxgroup"}.get(kind, "textline"),
                "correct": correct[k],
                "variant": "",
                "group_label": "",
            }
            for k, kind in zip(keys, problem.inputs, strict=True)
        }  # fmt: skip
        state = {
            "student_answers": {} if attempts == 1 else answers,
            "seed": 1,
            "done": attempts > 1,
            "correct_map": {} if attempts == 1 else correct_map,
            "input_state": {k: {} for k in keys},
        }
        event = {
            "submission": submission,
            "success": "correct" if all(correct.values()) else "incorrect",
            "grade": grade,
            "correct_map": correct_map,
            "state": state,
            "answers": answers,
            "attempts": attempts,
            "max_grade": len(keys),
            "problem_id": usage,
        }
        ctx = self._context(
            s, f"/courses/{o.course.course_id}/xblock/{usage}/handler/xmodule_handler/problem_check"
        )
        ctx["module"] = self._module(usage, o.titles[problem.block])
        return "problem_check", self._envelope(s, "problem_check", "server", event, ctx, "x_module")

    def _showanswer(self, s: Session) -> tuple[str, dict[str, Any]]:
        o = self.outlines[s.course]
        problem = self.rng.choice(o.problems)
        usage = o.course.module_id("problem", problem.block)
        ctx = self._context(
            s, f"/courses/{o.course.course_id}/xblock/{usage}/handler/xmodule_handler/problem_show"
        )
        ctx["module"] = self._module(usage, o.titles[problem.block])
        return "showanswer", self._envelope(s, "showanswer", "server", {"problem_id": usage}, ctx, "x_module")

    def _problem_show(self, s: Session) -> tuple[str, dict[str, Any]]:
        o = self.outlines[s.course]
        problem = self.rng.choice(o.problems)
        event = _COMPACT.encode({"problem": o.course.module_id("problem", problem.block)})
        return "problem_show", self._envelope(s, "problem_show", "browser", event, self._context(s, "/event"), self._page(s))  # fmt: skip

    def _enrollment(self, s: Session) -> tuple[str, dict[str, Any]]:
        o = self.outlines[s.course]
        name = "edx.course.enrollment.activated"
        mode = self.rng.choice(("audit", "audit", "honor", "verified"))
        event = {"course_id": o.course.course_id, "user_id": s.user.user_id, "mode": mode}
        record = self._envelope(s, name, "server", event, self._context(s, "/change_enrollment"), None)
        record["name"] = name
        return name, record

    def _forum(self, s: Session) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        o = self.outlines[s.course]
        name = rng.choices(
            ("edx.forum.thread.created", "edx.forum.response.created", "edx.forum.comment.created",
             "edx.forum.searched", "edx.forum.thread.voted"),
            (0.25, 0.3, 0.2, 0.15, 0.1),
        )[0]  # fmt: skip
        topic = f"{rng.getrandbits(96):024x}"
        category = f"{rng.getrandbits(128):032x}"
        base = {"category_id": category, "category_name": f"Week {s.chapter + 1} / Discussion",
                "commentable_id": category, "user_forums_roles": ["Student"],
                "user_course_roles": [], "team_id": None}  # fmt: skip
        if name == "edx.forum.searched":
            event: dict[str, Any] = {"query": " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4))),
                                     "page": 1, "total_results": rng.randint(0, 60), "corrected_text": None}  # fmt: skip
        elif name == "edx.forum.thread.voted":
            event = {**base, "id": topic, "undo_vote": False, "vote_value": "up"}
        else:
            body = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 150)))
            event = {
                **base,
                "body": body[:2000],
                "truncated": len(body) > 2000,
                "id": f"{rng.getrandbits(96):024x}",
                "url": f"https://{_HOST}/courses/{o.course.course_id}/discussion/forum/{category}/threads/{topic}",
                "options": {"followed": name.endswith("thread.created")},
            }
            if name == "edx.forum.thread.created":
                event.update(title=" ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 9))),
                             thread_type=rng.choice(("discussion", "question")), anonymous=False,
                             anonymous_to_peers=False, group_id=None)  # fmt: skip
            else:
                event["discussion"] = {"id": topic}
        ctx = self._context(s, f"/courses/{o.course.course_id}/discussion/{category}/threads/create")
        record = self._envelope(s, name, "server", event, ctx, None)
        record["name"] = name
        return name, record

    def _ui(self, s: Session) -> tuple[str, dict[str, Any]]:
        o = self.outlines[s.course]
        rng = self.rng
        if rng.random() < 0.5:
            name = "edx.ui.lms.link_clicked"
            event: dict[str, Any] = {"current_url": self._page(s), "target_url": f"https://{_HOST}/courses/{o.course.course_id}/progress"}  # fmt: skip
        else:
            name = "edx.ui.lms.outline.selected"
            chapter = o.chapters[s.chapter]
            event = {"current_url": f"https://{_HOST}/courses/{o.course.course_id}/course/",
                     "target_name": f"Week {s.chapter + 1}",
                     "target_url": f"https://{_HOST}/courses/{o.course.course_id}/jump_to/{o.course.module_id('chapter', chapter)}",
                     "widget_placement": "accordion"}  # fmt: skip
        record = self._envelope(s, name, "browser", event, self._context(s, "/event"), self._page(s))
        record["name"] = name
        return name, record

    def _mobile(self, s: Session) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        o = self.outlines[s.course]
        video = o.videos[(s.chapter * 7 + s.sequence) % len(o.videos)]
        usage = o.course.module_id("video", video)
        name = rng.choices(
            ("edx.video.played", "edx.video.paused", "edx.video.loaded", "edx.video.position.changed",
             "edx.video.stopped", "edx.video.transcript.shown"),
            (0.35, 0.25, 0.15, 0.1, 0.1, 0.05),
        )[0]  # fmt: skip
        s.video_time = round(s.video_time + rng.uniform(0, 90), 3)
        data: dict[str, Any] = {"code": "mobile", "id": usage, "currentTime": s.video_time}
        if name == "edx.video.position.changed":
            data = {"code": "mobile", "id": usage, "old_time": s.video_time, "new_time": s.video_time + 30}
        agent, app, version = next((m for m in _MOBILE_APPS if m[0] == s.agent), _MOBILE_APPS[0])
        received = s.now
        sent = received - rng.randrange(200_000, 30_000_000)
        if rng.random() < 0.02:  # watched offline: delivered with today's events
            sent -= rng.randrange(1, 3) * DAY_US
        sent -= sent % 1_000_000
        ctx: dict[str, Any] = {
            "user_id": s.user.user_id,
            "org_id": o.course.org,
            "course_id": o.course.course_id,
            "path": "/segmentio/event",
            "received_at": self._time(received - received % 1000 or 1000),
            "application": {"name": app, "version": version},
            "client": {"library": {"name": "analytics-android" if "android" in app else "analytics-ios",
                                   "version": "2.0.0"}, "network": {"wifi": rng.random() < 0.7},
                       "os": {"name": "Android" if "android" in app else "iOS"}},
            "component": "videoplayer",
            "open_in_browser_url": f"https://{_HOST}/courses/{o.course.course_id}/jump_to/{usage}",
            "module": {"display_name": "Lecture video", "usage_key": usage},
        }  # fmt: skip
        record: dict[str, Any] = {
            "username": s.user.username,
            "event_type": name,
            "name": name,
            "ip": s.ip,
            "agent": agent,
            "host": _HOST,
            "referer": "",
            "accept_language": "",
            "event": json.dumps(data),
            "event_source": "mobile",
            "context": ctx,
            "time": self._mobile_time(sent),
            "page": None,
        }
        return name, record

    def _mobile_time(self, micros: int) -> str:
        if micros >= 0:
            return self._time(micros)
        moment = datetime.combine(self.day, datetime.min.time()) + timedelta(microseconds=micros)
        return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")

    # -- the stream ------------------------------------------------------------------------------

    _BROWSER_KINDS = (
        ("_implicit", 0.27), ("_video", 0.25), ("_sequence", 0.11), ("_page_close", 0.06),
        ("_browser_check", 0.055), ("_server_check", 0.055), ("_problem_show", 0.03),
        ("_graded", 0.012), ("_showanswer", 0.015), ("_ui", 0.04), ("_forum", 0.02),
        ("_enrollment", 0.008),
    )  # fmt: skip

    def event(self) -> tuple[str, dict[str, Any]]:
        """The next event (its kind for the statistics, and the record)."""
        rng = self.rng
        while True:
            slot = rng.randrange(len(self.pool))
            s = self.pool[slot]
            s.now += int(rng.expovariate(1 / 45) * 1_000_000) + 1
            s.left -= 1
            if s.left < 0 or s.now >= DAY_US:
                self.pool[slot] = self._session()
                continue
            break
        if s.mobile:
            return self._mobile(s)
        method = rng.choices([k for k, _ in self._BROWSER_KINDS], [w for _, w in self._BROWSER_KINDS])[0]
        kind, record = getattr(self, method)(s)
        if rng.random() < 0.008 and record["event_source"] == "browser":
            # An event without context.course_id: the course is only in the page URL.
            record["context"]["course_id"] = ""
            record["context"]["org_id"] = ""
        return kind, record

    def bad_line(self, number: int) -> bytes:
        kind = _BAD_KINDS[number % len(_BAD_KINDS)]
        if kind == "html":
            return (
                b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
                b"</center><hr><center>nginx</center></body></html>"
            )
        if kind == "blank":
            return b""
        if kind == "comment":
            return b"# events exported by the synthetic log generator"
        if kind == "utf8":
            s = self.pool[0]
            _, record = self._page_close(s)
            record["username"] = "\x01"
            return json.dumps(record).encode("ascii").replace(b"\\u0001", b"ab\xff\xfecd")
        # A line cut at 2,043 characters: a long server problem_check.
        while True:
            s = self.pool[self.rng.randrange(len(self.pool))]
            _, record = self._server_check(s)
            text = json.dumps(record)
            if len(text) > TRUNCATE_AT + 50:
                return text[:TRUNCATE_AT].encode("ascii")

    def lines(self, events: int) -> Any:
        """Yield `events` serialised events (bytes without LF), with the bad lines among them."""
        stats = self.stats
        by_type = stats.by_type
        bad = 0
        for n in range(1, events + 1):
            kind, record = self.event()
            by_type[kind] = by_type.get(kind, 0) + 1
            yield json.dumps(record).encode("ascii")
            stats.events += 1
            if self.bad_every and n % self.bad_every == 0:
                yield self.bad_line(bad)
                bad += 1
                stats.bad_lines += 1


def _open(path: Path, compressed: bool, level: int) -> gzip.GzipFile | IO[bytes]:
    if compressed:
        return gzip.open(path, "wb", compresslevel=level)
    return path.open("wb")


def write_log(
    path: Path | str,
    events: int,
    seed: int = 42,
    *,
    users: int = DEFAULT_USERS,
    courses: int = DEFAULT_COURSES,
    day: str = DEFAULT_DATE,
    bad_every: int = DEFAULT_BAD_EVERY,
    level: int = 6,
) -> LogStats:
    """Write a tracking log of `events` events (plus the bad lines) to `path`; `.gz`: gzip-compressed."""
    if events < 0:
        raise ValueError("events must be >= 0")
    path = Path(path)
    writer = LogWriter(seed, users, courses, day, bad_every)
    tmp = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk: list[bytes] = []
    with _open(tmp, path.name.endswith(".gz"), level) as out:
        for line in writer.lines(events):
            chunk.append(line)
            if len(chunk) >= CHUNK_LINES:
                data = b"\n".join(chunk) + b"\n"
                writer.stats.bytes_uncompressed += len(data)
                out.write(data)
                chunk = []
        if chunk:
            data = b"\n".join(chunk) + b"\n"
            writer.stats.bytes_uncompressed += len(data)
            out.write(data)
    os.replace(tmp, path)
    writer.stats.lines = writer.stats.events + writer.stats.bad_lines
    return writer.stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate_logs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out", type=Path, help="the log to write: .log.gz (gzip) or .log (plain)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--courses", type=int, default=DEFAULT_COURSES)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bad-every", type=int, default=DEFAULT_BAD_EVERY, help="0: no bad lines")
    parser.add_argument("--date", default=DEFAULT_DATE, help="the day of the events (YYYY-MM-DD)")
    parser.add_argument("--level", type=int, default=6, help="gzip compression level (1-9)")
    parser.add_argument("--stats-json", type=Path, default=None, help="also write the counts there (JSON)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    stats = write_log(
        args.out,
        args.events,
        args.seed,
        users=args.users,
        courses=args.courses,
        day=args.date,
        bad_every=args.bad_every,
        level=args.level,
    )
    seconds = time.perf_counter() - started
    size = args.out.stat().st_size
    if args.stats_json:
        facts = {**asdict(stats), "bytes_compressed": size, "generate_seconds": seconds}
        args.stats_json.write_text(json.dumps(facts, indent=2) + "\n")
    print(
        f"{args.out}: {stats.events:,} events + {stats.bad_lines:,} bad lines, "
        f"{stats.bytes_uncompressed / 2**20:,.1f} MiB of text ({stats.bytes_uncompressed / max(1, stats.lines):,.0f} "
        f"bytes a line), {size / 2**20:,.1f} MiB on disk, in {seconds:.1f} s"
    )
    for kind, count in sorted(stats.by_type.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<32} {count:>10,}  {count / max(1, stats.events):6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
