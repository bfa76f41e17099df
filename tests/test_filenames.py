"""File names of the dumps: course parts with '-' and '.', prod and edge suffixes, hostile names."""

from __future__ import annotations

import pytest

from core.errors import UnsafeNameError
from services.database_state.filenames import parse_dump_name


@pytest.mark.parametrize(
    ("name", "database", "table"),
    [
        ("UQx-BIOIMG101x-1T2014-auth_user-prod-analytics.sql", "UQx_BIOIMG101x_1T2014", "auth_user"),
        (
            "UQx-PSYC1030.1x-4T2016-auth_userprofile-prod-analytics.sql",
            "UQx_PSYC10301x_4T2016",
            "auth_userprofile",
        ),
        (
            "UQx-DEMO101x-2T2015-student_courseenrollment-prod-edge-analytics.sql",
            "UQx_DEMO101x_2T2015",
            "student_courseenrollment",
        ),
        (
            "MITx-6.00.1-x-1T2014-courseware_studentmodule-prod-analytics.sql",
            "MITx_6001_x_1T2014",
            "courseware_studentmodule",
        ),
        (
            "UQx-X101-1T2016-assessment_assessmentfeedback_options-prod-analytics.sql",
            "UQx_X101_1T2016",
            "assessment_assessmentfeedback_options",
        ),
        ("UQx-X101-1T2016-teams_membership-prod-analytics.sql", "UQx_X101_1T2016", "teams_membership"),
    ],
)
def test_course_and_table_come_from_known_table_names(name, database, table):
    dump = parse_dump_name(name)
    assert (dump.database, dump.table, dump.known_table) == (database, table, True)


def test_failed_export_placeholder_is_recognised():
    dump = parse_dump_name("UQx-X101-1T2016-auth_user-prod-analytics.sql.failed")
    assert dump.failed_export and dump.table == "auth_user"


def test_a_table_added_by_edx_later_is_still_loaded_by_its_last_part():
    dump = parse_dump_name("UQx-X101-1T2016-brand_newtable-prod-analytics.sql")
    assert (dump.table, dump.known_table) == ("brand_newtable", False)


@pytest.mark.parametrize(
    "name",
    [
        "UQx-X-1T-auth_user`;drop-prod-analytics.sql",
        "UQx-X'; DROP DATABASE api; --1T-auth_user-prod-analytics.sql",
        'UQx-X"1-1T-auth_user-prod-analytics.sql',
        "UQx-..-1T2016-auth_user-prod-analytics.sql",
        "..-x-y-auth_user-prod-analytics.sql",
        "UQx-X101-1T2016-auth_user-prod-analytics.csv",
        "UQx-" + "A" * 300 + "-1T-auth_user-prod-analytics.sql",
        "UQx-" + "A" * 70 + "-1T-auth_user-prod-analytics.sql",
        "UQx-X 1-1T-auth_user-prod-analytics.sql",
        "UQx-X101-1T2016-auth_user-analytics.sql",
        "auth_user-prod-analytics.sql",
    ],
)
def test_hostile_or_malformed_names_are_refused(name):
    with pytest.raises(UnsafeNameError):
        parse_dump_name(name)
