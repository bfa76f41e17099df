"""Log lines cannot be forged or lost through a file name: every argument is escaped."""

from __future__ import annotations

import logging
import os
import re

from core.daemon import Daemon
from tests.packages import dump_dir, make_package, settings_for

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ingestor")


def test_names_with_a_newline_or_an_undecodable_byte_are_escaped_in_every_log_line(tmp_path):
    data = make_package(tmp_path / "data")
    directory = os.fsencode(dump_dir(data))
    forged = b"x\n2015-06-07 10:00:00,000 ERROR ingestor: forged line\n"
    names = [
        b"UQx-A-1T-auth_user-prod-analytics\xff.sql",  # wanted by DatabaseState, fails on its name
        b"notes-\xff.txt",  # taken by no service
        forged + b"UQx-A-1T-auth_user-prod-analytics.sql",
        forged + b".txt",
    ]
    for name in names:
        with open(os.path.join(directory, name), "wb") as out:
            out.write(b"id\tusername\n1\tu\n")
    settings = settings_for(data, tmp_path / "var", SERVICES="DatabaseState")
    daemon = Daemon(settings, foreground=False)
    assert daemon.run(once=True) == 1
    for log in ("ingestor.log", "DatabaseState.log"):
        lines = (settings.log_dir / log).read_text(encoding="utf-8").splitlines()
        assert lines and all(LINE.match(line) or line.startswith("    ") for line in lines), lines
        text = "\n".join(lines)
        assert "forged line" in text and not any(line.startswith("2015-06-07") for line in lines)
    text = (settings.log_dir / "ingestor.log").read_text(encoding="utf-8")
    assert "notes-\\xff.txt is taken by no service" in text
    assert "x\\n2015-06-07 10:00:00,000 ERROR ingestor: forged line\\n.txt is taken by no service" in text
    assert "analytics\\xff.sql" in text


def test_escaping_keeps_printable_text_and_composes_with_any_handler(tmp_path):
    from utils.logs import EscapingFilter, escape

    assert escape("Zürich événement.log") == "Zürich événement.log"
    assert escape("a\tb\r\n\x00\u202e\udcff") == "a\\tb\\r\\n\\x00\\u202e\\xff"
    logger = logging.getLogger("test_escaping")
    handler = logging.FileHandler(tmp_path / "any.log", encoding="utf-8")
    handler.addFilter(EscapingFilter())
    logger.addHandler(handler)
    try:
        logger.error("file %s: %d rows, %r", "a\nb", 3, "c\nd")
        try:
            raise ValueError("bad\nname")
        except ValueError:
            logger.error("failed %s", "e\udcfe", exc_info=True)
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = (tmp_path / "any.log").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "file a\\nb: 3 rows, 'c\\\\nd'"
    assert lines[1] == "failed e\\xfe"
    assert lines[2].startswith("Traceback") and all(line.startswith("    ") for line in lines[3:])
    assert lines[-1] == "    name"
