"""Logging set-up: one log file per service under `<STATE_DIR>/logs/`, and stderr in the foreground.

The files are opened with `WatchedFileHandler`: when logrotate moves a log away (deploy/logrotate),
the next line goes to a new file of the old name, so no `copytruncate` and no signal is needed.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Sequence
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
