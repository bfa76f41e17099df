#!/usr/bin/env python3
"""Optimus Ingestor's command line.

  run [--once]                 run in the foreground (--once: scan, drain the queue, exit)
  start | stop | restart       run as a background daemon (pid file in STATE_DIR)
  status [--json]              is the daemon running, and each service's state and progress
  files [--service] [--state]  tracked files, newest first
  scan                         queue new and changed files without ingesting them
  retry [--service NAME]       queue failed files again

Exit status: 0 success, 1 some file failed (run --once) or the daemon is not running (status),
2 configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from core.errors import ConfigError  # noqa: E402
from core.pidfile import AlreadyRunning, PidLock, running_pid  # noqa: E402
from core.settings import Settings, load_settings, prepare_state_dir  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingestor.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path, help="config file (default: ./config.py if present)")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one setting (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run in the foreground")
    run.add_argument("--once", action="store_true", help="scan, drain the queue in dependency order, exit")
    sub.add_parser("start", help="start the background daemon")
    stop = sub.add_parser("stop", help="stop the background daemon (finishes the current batch)")
    stop.add_argument("--timeout", type=float, default=60, help="seconds to wait (default 60)")
    sub.add_parser("restart", help="stop, then start the background daemon")
    status = sub.add_parser("status", help="daemon and queue state (from the API, or the tracking database)")
    status.add_argument("--json", action="store_true", help="the picture as JSON, for scripts")
    files = sub.add_parser("files", help="list tracked files, newest first")
    files.add_argument("--service", help="only this service")
    files.add_argument("--state", choices=("queued", "running", "done", "failed", "duplicate"))
    files.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    files.add_argument("--json", action="store_true", help="as JSON")
    sub.add_parser("scan", help="queue new and changed files without ingesting")
    retry = sub.add_parser("retry", help="queue failed files again")
    retry.add_argument("--service", action="append", default=[], help="only this service (repeatable)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError([f"--set {item!r}: expected KEY=VALUE"])
        overrides[key.strip()] = value
    return load_settings(args.config, overrides=overrides)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from core.daemon import Daemon

    try:
        with PidLock(settings.pid_file):
            daemon = Daemon(settings, foreground=True, reload=lambda: _settings(args))
            daemon.install_signals()
            return daemon.run(once=args.once)
    except AlreadyRunning as exc:
        print(f"ingestor: {exc}", file=sys.stderr)
        return 1


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    import daemon as pydaemon

    pid = running_pid(settings.pid_file)
    if pid:
        print(f"ingestor: already running (pid {pid})")
        return 0
    settings.STATE_DIR.mkdir(parents=True, exist_ok=True)
    print(f"ingestor: starting (log in {settings.log_dir})")
    sys.stdout.flush()
    context = pydaemon.DaemonContext(
        working_directory=str(REPO),
        pidfile=PidLock(settings.pid_file),
        umask=0o022,
        detach_process=True,
    )
    with context:
        from core.daemon import Daemon

        service = Daemon(settings, foreground=False, reload=lambda: _settings(args))
        service.install_signals()
        return service.run(once=False)


def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    pid = running_pid(settings.pid_file)
    if not pid or pid < 0:
        print("ingestor: not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if running_pid(settings.pid_file) is None:
            print(f"ingestor: stopped (pid {pid})")
            return 0
        time.sleep(0.2)
    print(f"ingestor: pid {pid} still finishing its batch after {args.timeout:g}s", file=sys.stderr)
    return 1


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from api.terminal import status_command

    return status_command(settings, running_pid(settings.pid_file), args.json)


def cmd_files(args: argparse.Namespace, settings: Settings) -> int:
    from api.terminal import files_command

    return files_command(settings, args.service, args.state, max(1, min(args.limit, 100_000)), args.json)


def _scheduler(settings: Settings):  # type: ignore[no-untyped-def]
    from core.daemon import Daemon

    daemon = Daemon(settings, foreground=True)
    daemon.scheduler.queue.ensure_schema()
    return daemon.scheduler


def cmd_scan(args: argparse.Namespace, settings: Settings) -> int:
    scheduler = _scheduler(settings)
    result = scheduler.scan()
    print(
        json.dumps(
            {
                "entries": len(result.entries),
                "problems": result.problems,
                "files": scheduler.queue.counts(),
            },
            indent=2,
            sort_keys=True,
        )
    )
    return 0


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from core import registry

    known = registry.discover()
    unknown = [name for name in args.service if name not in known]
    if unknown:
        raise ConfigError([f"retry --service: unknown service {name!r}" for name in unknown])
    count = _scheduler(settings).queue.retry_failed(args.service)
    print(f"ingestor: {count} failed file(s) queued again")
    return 0


COMMANDS = {
    "run": cmd_run,
    "start": cmd_start,
    "stop": cmd_stop,
    "status": cmd_status,
    "files": cmd_files,
    "scan": cmd_scan,
    "retry": cmd_retry,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        prepare_state_dir(settings)
        if args.command == "restart":
            args.timeout = 120
            cmd_stop(args, settings)
            return cmd_start(args, settings)
        return COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        print(f"ingestor: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
