"""CourseStructure: the course XML export as the dashboards' JSON tree and a `course_axis` table."""
