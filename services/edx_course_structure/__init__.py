"""EdxCourseStructure: edX's course_structure JSON, checked and served to the dashboards as delivered."""
