"""From a dump's file name to (database, table), safely.

`{course}-{table}-{suffix}.sql`, where course and run may themselves contain `-` and `.`, so the
name is matched against the known edX table names (longest first) rather than split on `-`. The
database is the course part with `-` -> `_` and `.` removed (`UQx-PSYC1030.1x-4T2016` ->
`UQx_PSYC10301x_4T2016`). Anything unexpected in a name is an `UnsafeNameError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import UnsafeNameError
from stores.sql.identifiers import check_name

# Longest first, so `-prod-edge-analytics` wins over `-edge-analytics`.
SUFFIXES = ("-prod-edge-analytics", "-prod-edx-replica", "-edge-analytics", "-prod-analytics")

KNOWN_TABLES = (
    "auth_user",
    "auth_userprofile",
    "certificates_generatedcertificate",
    "courseware_studentmodule",
    "student_courseenrollment",
    "user_id_map",
    "user_api_usercoursetag",
    "wiki_article",
    "wiki_articlerevision",
    "student_languageproficiency",
    "verify_student_verificationstatus",
    "teams",
    "teams_membership",
    "student_anonymoususerid",
    "student_courseaccessrole",
    "django_comment_client_role_users",
    "grades_persistentcoursegrade",
    "grades_persistentsubsectiongrade",
    "credit_crediteligibility",
    "course_groups_cohortmembership",
    "assessment_assessment",
    "assessment_assessmentfeedback",
    "assessment_assessmentfeedback_assessments",
    "assessment_assessmentfeedback_options",
    "assessment_assessmentfeedbackoption",
    "assessment_assessmentpart",
    "assessment_criterion",
    "assessment_criterionoption",
    "assessment_peerworkflow",
    "assessment_peerworkflowitem",
    "assessment_rubric",
    "assessment_studenttrainingworkflow",
    "assessment_studenttrainingworkflowitem",
    "assessment_trainingexample",
    "assessment_trainingexample_options_selected",
    "submissions_score",
    "submissions_scoresummary",
    "submissions_studentitem",
    "submissions_submission",
    "workflow_assessmentworkflow",
    "workflow_assessmentworkflowstep",
)
_BY_LENGTH = sorted(KNOWN_TABLES, key=len, reverse=True)
_COURSE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,198}")
_TABLE = re.compile(r"[a-z][a-z0-9_]{0,55}")
MAX_NAME = 255


@dataclass(frozen=True)
class DumpName:
    course: str  # as in the file name, e.g. UQx-PSYC1030.1x-4T2016
    database: str  # UQx_PSYC10301x_4T2016
    table: str
    known_table: bool
    failed_export: bool  # a `.sql.failed` placeholder left by the exporter


def database_name(course: str) -> str:
    """The SQL database of a course part of a file name."""
    return check_name(course.replace("-", "_").replace(".", ""), "database name")


def parse_dump_name(name: str) -> DumpName:
    """Split a `.sql` (or `.sql.failed`) file name; raise UnsafeNameError if it is not safe."""
    shown = repr(name)[:120]
    if len(name) > MAX_NAME or "/" in name or "\0" in name:
        raise UnsafeNameError(f"unsafe file name {shown}")
    failed = name.endswith(".sql.failed")
    if failed:
        stem = name[: -len(".sql.failed")]
    elif name.endswith(".sql"):
        stem = name[: -len(".sql")]
    else:
        raise UnsafeNameError(f"not a .sql dump: {shown}")
    suffix = next((s for s in SUFFIXES if stem.endswith(s)), None)
    if suffix is None:
        raise UnsafeNameError(f"file name {shown} does not end in one of {', '.join(SUFFIXES)}")
    rest = stem[: -len(suffix)]
    table = next((t for t in _BY_LENGTH if rest.endswith("-" + t)), None)
    known = table is not None
    if table is None:
        # A table edX added after this list was written: the last `-` part, if it looks like one.
        candidate = rest.rsplit("-", 1)[-1]
        if not _TABLE.fullmatch(candidate) or rest.count("-") < 3:
            raise UnsafeNameError(f"cannot find a table name in file name {shown}")
        table = candidate
    course = rest[: -len(table) - 1]
    if not _COURSE.fullmatch(course) or ".." in course or course.count("-") < 2:
        raise UnsafeNameError(f"unsafe or malformed course part {course[:80]!r} in file name {shown}")
    check_name(table, "table name", 56)
    return DumpName(course, database_name(course), table, known, failed)
