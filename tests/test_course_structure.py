"""CourseStructure through the real daemon loop (`run --once`): the sample package's three course
exports (an unpacked directory, a 2014-2019 tarball, a 2020+ tarball named after the run only), the
dashboards' reads of the JSON tree, the `course_axis` table on SQLite and MariaDB, and bad input."""

from __future__ import annotations

import io
import json
import logging
import os
import resource
import shutil
import tarfile
from pathlib import Path

import pytest
from lxml import etree

from base_service import Context
from core import states
from core.daemon import Daemon
from core.errors import Interrupted
from services.course_structure.olx import make_parser
from services.course_structure.service import CourseStructureService
from stores.sql import open_sql_store
from tests.conftest import REPO, SAMPLE_DATA
from tests.packages import dump_dir, make_package, settings_for

SAMPLE = {  # dbname -> (export as delivered, start, end, chapters)
    "UQx_BIOIMG101x_1T2014": ("UQx-BIOIMG101x-1T2014", "2014-03-03T00:00:00Z", "2014-05-26T00:00:00Z", 3),
    "UQx_PSYC10301x_4T2016": (
        "UQx-PSYC1030.1x-4T2016-course-prod-analytics.xml.tar.gz",
        "2015-04-01T00:00:00Z",
        "2015-07-31T00:00:00Z",
        4,
    ),
    "UQx_DEMO101x_2T2015": (
        "UQx-DEMO101x-2T2015-course-prod-edge-analytics.xml.tar.gz",
        "2015-05-04T00:00:00Z",
        "2015-07-27T00:00:00Z",
        3,
    ),
}
RUN = "1T2020"


@pytest.fixture
def env(tmp_path, sql_backend, unique_name):
    """A package, a state dir and a daemon; on MariaDB every database name is unique to the test."""
    data = make_package(tmp_path / "data")
    state = tmp_path / "var"
    mysql = sql_backend != "sqlite"

    class Env:
        def __init__(self):
            self.data, self.state, self.tmp = data, state, tmp_path
            self.store = open_sql_store(sql_backend, state)
            self.org = f"T{unique_name}" if mysql else "UQx"  # a unique course database on MariaDB
            self.prefix = f"{unique_name}_" if mysql else ""
            self.courses = tmp_path / "no-courses.py"
            self.courses.write_text("EDX_DATABASES = {}\n")
            self.created = [f"api_{unique_name}"]

        def sample(self):
            """The sample package; on MariaDB its courses.py entries get unique database names."""
            shutil.rmtree(data)
            shutil.copytree(SAMPLE_DATA, data, symlinks=True)
            self.courses = REPO / "courses.py"
            if mysql:
                text = (REPO / "courses.py").read_text()
                for dbname in SAMPLE:
                    text = text.replace(f'"dbname": "{dbname}"', f'"dbname": "{self.prefix}{dbname}"')
                self.courses = tmp_path / "courses.py"
                self.courses.write_text(text)
            self.created += [self.prefix + db for db in SAMPLE]
            return {self.prefix + db: value for db, value in SAMPLE.items()}

        def run(self):
            settings = settings_for(
                data,
                state,
                sql_backend,
                TRACKING_DATABASE=f"api_{unique_name}",
                SERVICES="CourseStructure",
                COURSES_FILE=str(self.courses),
            )
            daemon = Daemon(settings, foreground=False)
            status = daemon.run(once=True)
            self.scheduler = daemon.scheduler
            return status

        def rows(self):
            return {os.path.basename(r.meta): r for r in self.scheduler.queue.rows()}

        def tree(self, dbname):
            return json.loads(
                (state / "www" / "course_structure" / f"{dbname.replace('_', '-')}.json").read_text()
            )

        def outputs(self):
            folder = state / "www" / "course_structure"
            return sorted(p.name for p in folder.iterdir()) if folder.exists() else []

        def files(self, course="TEST101x", **changes):
            return course_files(self.org, course, **changes)

        def dbname(self, course="TEST101x"):
            return f"{self.org}_{course}_{RUN}"

        def axis(self, dbname, columns="category, url_name, weight, display_name"):
            self.created.append(dbname)
            return [
                tuple(r) for r in self.store.query(dbname, f"SELECT {columns} FROM course_axis ORDER BY idx")
            ]

    environment = Env()
    yield environment
    if mysql:
        names = set(environment.created) | {d for d in environment.store.list_databases() if unique_name in d}
        for name in names:
            environment.store.drop_database(name)


def course_files(org, course="TEST101x", run=RUN, **changes):
    """A small valid export: one chapter, sequential, vertical and a leaf of each kind."""
    files = {
        "course.xml": f'<course url_name="{run}" org="{org}" course="{course}"/>',
        f"course/{run}.xml": '<course display_name="Test" start="2020-01-06T00:00:00Z" end="2020-03-30T00:00:00Z">'
        '<chapter url_name="c1"/><wiki slug="x"/></course>',
        "chapter/c1.xml": '<chapter display_name="Week 1"><sequential url_name="s1"/></chapter>',
        "sequential/s1.xml": '<sequential display_name="HW" graded="true" format="Homework" '
        'due="2020-02-01T00:00:00Z"><vertical url_name="v1"/></sequential>',
        "vertical/v1.xml": '<vertical display_name="Unit"><problem url_name="p1"/><video url_name="vid1"/>'
        '<html url_name="h1"/><discussion url_name="d1"/></vertical>',
        "problem/p1.xml": '<problem display_name="P1" weight="2.5"><choiceresponse><choice correct="true">'
        "A</choice></choiceresponse></problem>",
        "video/vid1.xml": '<video display_name="V1" youtube_id_1_0="abc"><source src="x.mp4"/></video>',
        "html/h1.xml": '<html display_name="H1" filename="h1"/>',
        "html/h1.html": "<p>SECRET BODY</p>",
        "discussion/d1.xml": '<discussion display_name="D1" discussion_id="d1id" discussion_category="Week 1" '
        'discussion_target="Talk"/>',
        f"policies/{run}/policy.json": json.dumps({f"course/{run}": {"display_name": "Test", "tabs": []}}),
        f"policies/{run}/grading_policy.json": json.dumps({"GRADER": [], "GRADE_CUTOFFS": {"Pass": 0.5}}),
    }
    files.update(changes)
    return {name: value.encode() if isinstance(value, str) else value for name, value in files.items()}


def write_tarball(root, name, files, top=RUN, extra=()):
    """`name` in the package: `files` under `top/`, then the raw `extra` (TarInfo, bytes) members."""
    path = dump_dir(root) / name
    with tarfile.open(path, "w:gz") as archive:
        for rel, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info, data in extra:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def write_directory(root, name, files):
    for rel, data in files.items():
        target = dump_dir(root) / name / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dump_dir(root) / name


def walk(tree, *tags):
    """Every node reached from the root down `tags` (chapter, sequential, ...)."""
    level = [tree]
    for tag in tags:
        level = [child for node in level for child in node["children"] if child["tag"] == tag]
    return level


def test_sample_courses_become_trees_named_after_their_databases(env):
    sample = env.sample()
    assert env.run() == 0
    assert env.outputs() == sorted(f"{db.replace('_', '-')}.json" for db in sample)
    if not env.prefix:
        assert env.outputs() == [
            "UQx-BIOIMG101x-1T2014.json",
            "UQx-DEMO101x-2T2015.json",
            "UQx-PSYC10301x-4T2016.json",
        ]
    for dbname, (delivered, start, end, chapters) in sample.items():
        assert env.rows()[delivered].state == states.DONE
        tree = env.tree(dbname)
        assert (tree["tag"], tree["start"], tree["end"]) == ("course", start, end), "quotes stripped"
        assert tree["display_name"] and tree["policy"]["tabs"] and tree["grading_policy"]["GRADER"]
        assert len(walk(tree, "chapter")) == chapters
        leaves = walk(tree, "chapter", "sequential", "vertical")
        assert leaves and all(v["url_name"] and v["display_name"] for v in leaves)
        leaves = [leaf for vertical in leaves for leaf in vertical["children"]]
        assert all(leaf["url_name"] and leaf["display_name"] for leaf in leaves)
        discussions = [leaf for leaf in leaves if leaf["tag"] == "discussion"]
        assert len(discussions) >= 2, "one from its own file, one inline in the vertical"
        assert all(d["discussion_id"] and d["discussion_category"] for d in discussions)
        weights = [leaf["weight"] for leaf in leaves if leaf["tag"] == "problem"]
        assert "null" in weights and any(w not in {"null", ""} for w in weights)
        assert all("children" in leaf and "SECRET" not in json.dumps(leaf) for leaf in leaves)
    psyc = env.tree(env.prefix + "UQx_PSYC10301x_4T2016")
    assert psyc["course_id"] == "course-v1:UQx+PSYC1030.1x+4T2016"
    assert any("literal quotes" in w for w in psyc["warnings"])
    assert "literal quotes" in env.rows()[SAMPLE["UQx_PSYC10301x_4T2016"][0]].error


def _count_files(export: Path, folder: str) -> int:
    if export.is_dir():
        return len(list((export / folder).glob("*.xml")))
    with tarfile.open(export) as archive:
        return sum(1 for name in archive.getnames() if f"/{folder}/" in name and name.endswith(".xml"))


def test_course_axis_counts_chapters_videos_and_problems_as_in_the_xml(env):
    sample = env.sample()
    assert env.run() == 0
    for dbname, (delivered, *_rest) in sample.items():
        export = dump_dir(env.data) / delivered
        rows = env.axis(dbname, "category, url_name, chapter, parent, path, course_id, idx")
        counts = {c: sum(1 for r in rows if r[0] == c) for c in ("chapter", "video", "problem")}
        assert counts == {c: _count_files(export, c) for c in counts}
        assert [r[6] for r in rows] == list(range(len(rows))), "document order"
        assert rows[0][0] == "course" and rows[0][4] == "/"
        chapter = rows[1]
        assert (chapter[0], chapter[2], chapter[4]) == ("chapter", chapter[1], f"/{chapter[1]}")
        assert all(r[2] is not None for r in rows[1:]), "every block below the course is in a chapter"
        assert "wiki" not in {r[0] for r in rows}
    rows = env.axis(env.prefix + "UQx_BIOIMG101x_1T2014", "url_name, graded, due, start, weight, parent")
    by_name = {r[0]: r for r in rows}
    _, graded, due, start, weight, parent = by_name["magnification"]
    assert (graded, weight, parent) == (1, None, "w1_hw"), "graded inherited, weight='null' is NULL"
    assert str(due).startswith("2014-05-19 00:00:00"), "due inherited from the sequential"
    assert str(start).startswith("2014-03-03 00:00:00"), "start inherited from the course"
    assert by_name["resolution_limit"][4] == 2.0
    assert by_name["welcome_video"][1] == 0


def test_2020_exports_named_after_the_run_do_not_collide(env):
    write_tarball(env.data, "UQx-AAA101x-1T2020-course-prod-analytics.xml.tar.gz", env.files("AAA101x"))
    write_tarball(env.data, "UQx-BBB101x-1T2020-course-prod-analytics.xml.tar.gz", env.files("BBB101x"))
    assert env.run() == 0
    assert env.outputs() == [f"{env.org}-AAA101x-1T2020.json", f"{env.org}-BBB101x-1T2020.json"]
    tree = env.tree(env.dbname("AAA101x"))
    assert tree["course_id"] == f"course-v1:{env.org}+AAA101x+1T2020"
    assert any("not in courses.py" in w for w in tree["warnings"])
    assert [r[:2] for r in env.axis(env.dbname("BBB101x"))][:2] == [("course", RUN), ("chapter", "c1")]


def test_weight_null_stays_in_the_tree_and_is_null_in_the_axis(env):
    vertical = '<vertical display_name="NULL"><problem url_name="p1"/><problem url_name="p2"/></vertical>'
    files = env.files(
        **{"vertical/v1.xml": vertical, "problem/p2.xml": '<problem display_name="P2" weight="null"/>'}
    )
    write_tarball(env.data, "X-course-prod-analytics.xml.tar.gz", files)
    assert env.run() == 0
    dbname = env.dbname()
    problems = walk(env.tree(dbname), "chapter", "sequential", "vertical", "problem")
    assert [p["weight"] for p in problems] == ["2.5", "null"]
    rows = env.axis(dbname)
    assert rows[-2:] == [("problem", "p1", 2.5, "P1"), ("problem", "p2", None, "P2")]
    assert rows[-3] == ("vertical", "v1", None, "NULL"), "the text NULL is not SQL NULL"


def test_quoted_due_is_stripped_with_a_warning(env):
    sequential = '<sequential display_name="HW" due="&quot;2020-02-01T00:00:00Z&quot;"><vertical url_name="v1"/></sequential>'
    write_directory(env.data, "unpacked", env.files(**{"sequential/s1.xml": sequential}))
    assert env.run() == 0
    tree = env.tree(env.dbname())
    assert walk(tree, "chapter", "sequential")[0]["due"] == "2020-02-01T00:00:00Z"
    assert any("sequential/s1.xml" in w and "literal quotes" in w for w in tree["warnings"])
    assert "literal quotes" in env.rows()["unpacked"].error


def test_reference_loop_is_warned_and_not_expanded_again(env):
    files = env.files(**{"vertical/v1.xml": '<vertical display_name="U"><chapter url_name="c1"/></vertical>'})
    write_tarball(env.data, "loop-course-prod-analytics.xml.tar.gz", files)
    assert env.run() == 0
    tree = env.tree(env.dbname())
    inner = walk(tree, "chapter", "sequential", "vertical", "chapter")
    assert inner == [{"tag": "chapter", "url_name": "c1", "children": []}]
    assert any("reference loop" in w and "chapter/c1.xml" in w for w in tree["warnings"])


def test_missing_referenced_file_is_warned_and_the_element_kept(env):
    vertical = '<vertical display_name="U"><problem url_name="gone"/><html url_name="inline" display_name="I"/></vertical>'
    write_tarball(
        env.data, "gone-course-prod-analytics.xml.tar.gz", env.files(**{"vertical/v1.xml": vertical})
    )
    assert env.run() == 0
    tree = env.tree(env.dbname())
    leaves = walk(tree, "chapter", "sequential", "vertical")[0]["children"]
    assert leaves == [
        {"tag": "problem", "url_name": "gone", "children": []},
        {"tag": "html", "url_name": "inline", "display_name": "I", "children": []},
    ]
    assert [w for w in tree["warnings"] if "missing" in w] == [
        "vertical/v1.xml: <problem url_name='gone'>: problem/gone.xml is missing; kept as it is"
    ], "an inline element with its own attributes is not a missing reference"


def test_unsafe_url_name_is_not_followed(env):
    vertical = '<vertical display_name="U"><problem url_name="../../../../../../etc/passwd"/></vertical>'
    write_directory(env.data, "unpacked", env.files(**{"vertical/v1.xml": vertical}))
    assert env.run() == 0
    tree = env.tree(env.dbname())
    assert any("not a safe file name" in w for w in tree["warnings"])
    assert "root:" not in json.dumps(tree)


def test_malformed_xml_fails_the_course_naming_the_file(env):
    bad = '<chapter display_name="W"><sequential url_name="s1"></chapter>'
    write_tarball(env.data, "bad-course-prod-analytics.xml.tar.gz", env.files(**{"chapter/c1.xml": bad}))
    assert env.run() == 1
    row = env.rows()["bad-course-prod-analytics.xml.tar.gz"]
    assert row.state == states.FAILED
    assert "bad-course-prod-analytics.xml.tar.gz: chapter/c1.xml: malformed XML" in row.error
    assert "line 1" in row.error
    assert env.outputs() == []


def _member(name, kind=tarfile.REGTYPE, linkname="", data=b"pwned"):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (_member("../evil"), "points outside the archive"),
        (_member(f"{RUN}/../../evil"), "points outside the archive"),
        (_member("/tmp/optimus-course-structure-evil-absolute"), "absolute path"),
        (_member(f"{RUN}/chapter/evil.xml", tarfile.SYMTYPE, "../../../../../etc/passwd"), "unsafe link"),
        (_member(f"{RUN}/evil", tarfile.SYMTYPE, "/etc/passwd"), "absolute target"),
        (_member(f"{RUN}/evil", tarfile.LNKTYPE, "../outside"), "unsafe link"),
        (_member(f"{RUN}/dev", tarfile.CHRTYPE), "device or FIFO"),
        (_member(f"{RUN}/fifo", tarfile.FIFOTYPE), "device or FIFO"),
    ],
    ids=[
        "parent_dir",
        "climbing_out",
        "absolute",
        "symlink_out",
        "symlink_absolute",
        "hardlink_out",
        "chr_device",
        "fifo",
    ],
)
def test_archive_with_an_unsafe_member_fails_and_writes_nothing_outside(env, member, expected):
    name = "UQx-EVIL101x-1T2020-course-prod-analytics.xml.tar.gz"
    write_tarball(env.data, name, env.files("EVIL101x"), extra=[member])
    before = set(env.tmp.rglob("*"))
    assert env.run() == 1
    row = env.rows()[name]
    assert row.state == states.FAILED and expected in row.error and name in row.error
    assert env.outputs() == []
    new = {p for p in set(env.tmp.rglob("*")) - before if p != env.state and env.state not in p.parents}
    assert new == set(), "nothing appeared outside the state directory"
    assert not Path("/tmp/optimus-course-structure-evil-absolute").exists()
    assert not any(p.name == "evil" for p in env.tmp.parent.iterdir())


def test_directory_export_with_a_link_out_fails(env):
    export = write_directory(env.data, "unpacked", env.files())
    (export / "problem" / "p1.xml").unlink()
    os.symlink("/etc/passwd", export / "problem" / "p1.xml")
    assert env.run() == 1
    assert "link to outside the course directory" in env.rows()["unpacked"].error


def _billion_laughs(levels=10):
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)
    )
    return f'<?xml version="1.0"?><!DOCTYPE course [{entities}]>'


def test_billion_laughs_fails_without_using_much_memory(env):
    course = (
        _billion_laughs()
        + '<course display_name="&lol9;" start="2020-01-01"><chapter url_name="c1"/></course>'
    )
    write_tarball(
        env.data, "lol-course-prod-analytics.xml.tar.gz", env.files(**{f"course/{RUN}.xml": course})
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert env.run() == 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000, "KiB: under 200 MB more"
    row = env.rows()["lol-course-prod-analytics.xml.tar.gz"]
    assert row.state == states.FAILED and f"course/{RUN}.xml: malformed XML" in row.error
    assert "amplification" in row.error or "entity" in row.error.lower()


def test_entities_in_content_are_never_expanded():
    """Depending on the libxml2 version the parse fails (amplification guard) or keeps the reference."""
    document = (_billion_laughs() + "<course>&lol9;<chapter/></course>").encode()
    try:
        root = etree.fromstring(document, make_parser())
    except etree.XMLSyntaxError as exc:
        assert "amplification" in str(exc) or "entity" in str(exc).lower()
    else:
        assert len(etree.tostring(root)) < 1000


def test_external_entity_is_not_resolved(env):
    course = (
        '<?xml version="1.0"?><!DOCTYPE course [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
        '<!ENTITY % remote SYSTEM "file:///etc/passwd"> %remote;]>'
        '<course display_name="XXE">&xxe;<chapter url_name="c1"/>&xxe;</course>'
    )
    write_tarball(
        env.data, "xxe-course-prod-analytics.xml.tar.gz", env.files(**{f"course/{RUN}.xml": course})
    )
    assert env.run() == 0
    text = (env.state / "www" / "course_structure" / f"{env.org}-TEST101x-{RUN}.json").read_text()
    secret = Path("/etc/passwd").read_text().splitlines()[0]
    assert secret not in text and "root:" not in text
    tree = json.loads(text)
    assert [c["tag"] for c in tree["children"]] == ["chapter"]
    root = etree.fromstring(course.encode(), make_parser())
    assert secret.encode() not in etree.tostring(root)


def test_courses_py_entry_found_by_mongoname_names_the_output(env):
    dbname = f"Renamed_{env.org}"
    env.courses = env.tmp / "courses.py"
    env.courses.write_text(
        f"EDX_DATABASES = {{'t': {{'dbname': '{dbname}', 'mongoname': '{env.org}/TEST101x/1T2020', "
        "'discussiontable': 'x-prod', 'csjson': 'x.json'}}\n"
    )
    write_directory(env.data, "unpacked", env.files())
    assert env.run() == 0
    assert env.outputs() == [f"Renamed-{env.org}.json"]
    assert env.tree(dbname)["course_id"] == f"{env.org}/TEST101x/1T2020"
    assert len(env.axis(dbname)) == 8


def test_interrupted_run_leaves_the_previous_output_intact(env):
    export = write_directory(env.data, "unpacked", env.files())
    assert env.run() == 0
    out = env.state / "www" / "course_structure" / f"{env.org}-TEST101x-{RUN}.json"
    before = out.read_bytes()
    (export / "chapter" / "c1.xml").write_text(
        '<chapter display_name="Changed"><sequential url_name="s1"/></chapter>'
    )
    scheduler = env.scheduler
    service = CourseStructureService()
    calls: list[float] = []
    ctx = Context(
        settings=scheduler.settings,
        sql=scheduler.sql,
        documents=scheduler.documents,
        courses=scheduler.courses,
        log=logging.getLogger("test"),
        progress=calls.append,
        should_stop=lambda: True,
    )
    with pytest.raises(Interrupted, match="unpacked: stopped after 0 of 1 chapters"):
        service.ingest(export, ctx)
    assert out.read_bytes() == before
    assert not list((env.state / "www" / "course_structure").glob(".*.tmp"))


def test_link_inside_the_archive_is_followed_in_memory(env):
    vertical = '<vertical display_name="U"><problem url_name="p1"/><problem url_name="alias"/></vertical>'
    link = _member(f"{RUN}/problem/alias.xml", tarfile.SYMTYPE, "p1.xml")
    write_tarball(
        env.data,
        "ok-course-prod-analytics.xml.tar.gz",
        env.files(**{"vertical/v1.xml": vertical}),
        extra=[link],
    )
    assert env.run() == 0
    problems = walk(env.tree(env.dbname()), "chapter", "sequential", "vertical", "problem")
    assert [(p["url_name"], p["display_name"]) for p in problems] == [("p1", "P1"), ("alias", "P1")]


def test_exponential_references_fail_instead_of_exhausting_memory(env):
    levels = {
        f"vertical/l{i}.xml": "<vertical>" + f'<vertical url_name="l{i + 1}"/>' * 10 + "</vertical>"
        for i in range(12)
    }
    levels["vertical/v1.xml"] = '<vertical><vertical url_name="l0"/></vertical>'
    write_tarball(env.data, "dag-course-prod-analytics.xml.tar.gz", env.files(**levels))
    assert env.run() == 1
    assert "more than 300000 elements" in env.rows()["dag-course-prod-analytics.xml.tar.gz"].error


def test_corrupt_archive_fails_with_a_clear_error(env):
    (dump_dir(env.data) / "cut-course-prod-analytics.xml.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert env.run() == 1
    assert "not a readable .tar.gz archive" in env.rows()["cut-course-prod-analytics.xml.tar.gz"].error
