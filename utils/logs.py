"""Logging set-up: one log file per service under `<STATE_DIR>/logs/`, and stderr in the foreground.

The files are opened with `WatchedFileHandler`: when logrotate moves a log away (deploy/logrotate),
the next line goes to a new file of the old name, so no `copytruncate` and no signal is needed.

Every handler gets `EscapingFilter`: the arguments of a record (file names, error texts) are escaped
so that a name holding a newline cannot forge a log line, and one holding a byte that is not UTF-8
(`\\xff`, kept as a surrogate by the file system's decoding) cannot make the line fail to be written.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTINUATION = "\n    "  # a line break kept in a message (a traceback) starts indented

_UNSAFE = re.compile(r"[^\x20-\x7e]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if char.isprintable():
        return char
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    """`text` with line breaks, control and format characters and undecodable bytes escaped as in
    a Python literal (`\\n`, `\\xff`, as the tracking table's `meta` shows them); printable text
    (accents included) is kept as it is."""
    if text.isprintable():
        return text
    return _UNSAFE.sub(_escape_char, text)


def _safe_arg(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return escape(text) if isinstance(value, str) or not text.isprintable() else value


class EscapingFilter(logging.Filter):
    """Escapes a record's arguments and keeps every other line break of its message indented.

    It changes the record itself (once), so it composes with any handler and formatter.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_escaped", False):
            return True
        args: Any = record.args
        if isinstance(args, Mapping):
            record.args = {k: _safe_arg(v) for k, v in args.items()}
        elif isinstance(args, tuple) and args:
            record.args = tuple(_safe_arg(a) for a in args)
        message = record.getMessage()
        if not message.isprintable():
            message = CONTINUATION.join(_keep_breaks(line) for line in message.rstrip("\n").split("\n"))
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = CONTINUATION.join(_keep_breaks(line) for line in text.rstrip("\n").split("\n"))
        record.__dict__["_escaped"] = True
        return True


def _keep_breaks(line: str) -> str:
    """One line of a message: control characters and undecodable bytes escaped."""
    return line if line.isprintable() else _UNSAFE.sub(_escape_char, line)


ESCAPING = EscapingFilter()


def install_escaping(loggers: Sequence[logging.Logger]) -> None:
    """Add the escaping filter to every handler of `loggers` (whatever their class)."""
    for logger in loggers:
        for handler in logger.handlers:
            if ESCAPING not in handler.filters:
                handler.addFilter(ESCAPING)


def setup_logging(log_dir: Path, services: Sequence[str], to_stderr: bool, level: int = logging.INFO) -> None:
    """`ingestor.log` for the daemon, `<Service>.log` for each service (also in ingestor.log)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("ingestor")
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(FORMAT)
    main = logging.handlers.WatchedFileHandler(log_dir / "ingestor.log", encoding="utf-8")
    main.setFormatter(formatter)
    root.addHandler(main)
    if to_stderr:
        err = logging.StreamHandler(sys.stderr)
        err.setFormatter(formatter)
        root.addHandler(err)
    for name in services:
        logger = logging.getLogger(f"ingestor.{name}")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        own = logging.handlers.WatchedFileHandler(log_dir / f"{name}.log", encoding="utf-8")
        own.setFormatter(formatter)
        logger.addHandler(own)
    install_escaping([root, *(logging.getLogger(f"ingestor.{name}") for name in services)])
