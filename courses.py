"""The course registry: one entry per course whose data the ingestor loads and the dashboards show.

The entries below describe the three courses of the sample data package in examples/data (see
examples/README.md). Replace them with your own courses; keep the three special keys `default`,
`personcourse` and `Course_Event`, which name databases rather than courses. Field meanings are in
docs/data-contract.md ("courses.py"):

* dbname: the SQL database made from the course's dump files (`UQx-PSYC1030.1x-4T2016-...` ->
  `UQx_PSYC10301x_4T2016`: `-` becomes `_`, `.` is dropped).
* mongoname: the course id as events carry it in `context.course_id`.
* discussiontable: the forum file name without `.mongo` (`-prod` on edx.org, `-edge` on edge).
* csjson: the file name of the course's edX course_structure JSON.
* icon, year, term: display data for the dashboards.
"""

from __future__ import annotations

EDX_DATABASES: dict[str, dict[str, str]] = {
    "default": {
        "dbname": "api",
        "mongoname": "",
        "discussiontable": "",
        "csjson": "",
        "icon": "",
        "year": "",
        "term": "",
    },
    "personcourse": {
        "dbname": "Person_Course",
        "mongoname": "",
        "discussiontable": "",
        "csjson": "",
        "icon": "",
        "year": "",
        "term": "",
    },
    "Course_Event": {
        "dbname": "Course_Event",
        "mongoname": "",
        "discussiontable": "",
        "csjson": "",
        "icon": "",
        "year": "",
        "term": "",
    },
    # An old-style (Org/Course/Run) edx.org course.
    "bioimg_101x_1T2014": {
        "dbname": "UQx_BIOIMG101x_1T2014",
        "mongoname": "UQx/BIOIMG101x/1T2014",
        "discussiontable": "UQx-BIOIMG101x-1T2014-prod",
        "csjson": "UQx-BIOIMG101x-1T2014-course_structure-prod-analytics.json",
        "icon": "fa-desktop",
        "year": "2014",
        "term": "1T",
    },
    # A new-style (course-v1:) edx.org course; note the "." in the course part.
    "psyc_10301x_4T2016": {
        "dbname": "UQx_PSYC10301x_4T2016",
        "mongoname": "course-v1:UQx+PSYC1030.1x+4T2016",
        "discussiontable": "UQx-PSYC1030.1x-4T2016-prod",
        "csjson": "UQx-PSYC1030.1x-4T2016-course_structure-prod-analytics.json",
        "icon": "fa-users",
        "year": "2016",
        "term": "4T",
    },
    # An edge.edx.org course. The sample package has no course_structure JSON for it (edge
    # packages often lack one): csjson is the name the file would have, and nothing provides it.
    "demo_101x_2T2015": {
        "dbname": "UQx_DEMO101x_2T2015",
        "mongoname": "UQx/DEMO101x/2T2015",
        "discussiontable": "UQx-DEMO101x-2T2015-edge",
        "csjson": "UQx-DEMO101x-2T2015-course_structure-prod-edge-analytics.json",
        "icon": "fa-flask",
        "year": "2015",
        "term": "2T",
    },
}

for key in EDX_DATABASES:
    EDX_DATABASES[key]["id"] = key
