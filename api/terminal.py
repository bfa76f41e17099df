"""`ingestor.py status` and `ingestor.py files`: the status API's picture in a terminal.

`status` asks the running daemon's API (`/api/v1/services`, `/api/v1/summary`) and, when no daemon
runs or its API does not answer, reads the tracking database itself: the same JSON either way
(`--json`), a table per service with progress bars on a terminal, plain `key=value` lines when piped.
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from typing import IO, TYPE_CHECKING, Any

from api.snapshot import Monitor, iso
from core import states

if TYPE_CHECKING:
    from core.settings import Settings


def _from_api(settings: Settings) -> dict[str, Any] | None:
    host = "127.0.0.1" if settings.API_HOST in ("0.0.0.0", "", "::") else settings.API_HOST
    base = f"http://{host}:{settings.API_PORT}"
    try:
        with urllib.request.urlopen(f"{base}/api/v1/services", timeout=5) as answer:
            services = json.loads(answer.read())
        with urllib.request.urlopen(f"{base}/api/v1/summary", timeout=5) as answer:
            summary = json.loads(answer.read())
    except (OSError, ValueError, urllib.error.HTTPError):
        return None
    return {
        "source": "api",
        "as_of": services.get("as_of"),
        "services": services["services"],
        "totals": summary["totals"],
        "queue": summary["queue"],
        "recent_failures": summary["recent_failures"],
    }


def _scheduler(settings: Settings) -> Any:
    from core import registry
    from core.scheduler import Scheduler
    from stores.sql import open_sql_store

    services = registry.select(registry.discover(), settings.SERVICES, settings.IGNORE_SERVICES)
    sql = open_sql_store(settings.SQL_URL, settings.STATE_DIR)

    def documents() -> Any:
        from stores.documents import open_document_store

        return open_document_store(settings.MONGO_URL, settings.STATE_DIR)

    return Scheduler(settings, services, sql, documents)


def _from_database(settings: Settings) -> dict[str, Any]:
    monitor = Monitor(_scheduler(settings))
    snap = monitor.snapshot()
    totals = {s: 0 for s in states.ALL}
    for by_state in snap.summary.values():
        for state, (count, _, _) in by_state.items():
            totals[state] = totals.get(state, 0) + count
    return {
        "source": "database",
        "as_of": iso(snap.taken),
        "services": monitor.services(snap),
        "totals": totals | {"files": sum(totals.values())},
        "queue": {"length": totals[states.QUEUED], "next": [monitor.file_view(r) for r in snap.queued]},
        "recent_failures": [monitor.file_view(r) for r in snap.failures],
    }


def _deliveries(settings: Settings) -> list[dict[str, Any]]:
    """Each delivery's state (found, unpacking with progress, unpacked, failed and why), from its
    tracking row; [] when the database does not answer (the rest of the picture says why)."""
    from core.errors import IngestorError
    from core.queue import TrackingQueue
    from services.deliveries.status import describe
    from stores.sql import open_sql_store

    try:
        queue = TrackingQueue(
            open_sql_store(settings.SQL_URL, settings.STATE_DIR), database=settings.TRACKING_DATABASE
        )
        return [describe(row) for row in queue.rows(service="Deliveries")]
    except IngestorError:
        return []


def gather(settings: Settings, pid: int | None) -> dict[str, Any]:
    picture = _from_api(settings) if pid and settings.API_ENABLED else None
    if picture is None:
        picture = _from_database(settings)
    found = {"running": bool(pid), "pid": pid, **picture}
    deliveries = _deliveries(settings)
    if deliveries:
        found["deliveries"] = deliveries
    return found


def bar(percent: float, width: int = 24) -> str:
    filled = round(width * max(0.0, min(percent, 100.0)) / 100)
    return "[" + "#" * filled + "-" * (width - filled) + f"] {percent:5.1f}%"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def render_tty(picture: dict[str, Any], out: IO[str]) -> None:
    width = shutil.get_terminal_size((100, 24)).columns
    state = f"running (pid {picture['pid']})" if picture["running"] else "not running"
    out.write(f"ingestor: {state}; as of {picture['as_of']} (from the {picture['source']})\n\n")
    for s in picture["services"]:
        c = s["counts"]
        out.write(f"{s['name']}  [{s['state']}]{'  (derived)' if s['kind'] == 'derived' else ''}\n")
        out.write(
            f"  queued {c['queued']:>6}  running {c['running']:>3}  done {c['done']:>6}  failed {c['failed']:>4}"
            f"  duplicate {c['duplicate']:>4}   rows {s['rows_loaded']:>10}  rejected {s['rows_rejected']:>8}\n"
        )
        if s["running"]:
            r = s["running"]
            out.write(
                f"  {bar(r['percent'])}  eta {_eta(r['eta_seconds'])}  {r['path'][: max(width - 50, 20)]}\n"
            )
        if s.get("last_completed"):
            out.write(f"  last completed {s['last_completed']}\n")
        if s.get("last_error"):
            out.write(f"  last error: {s['last_error'][: max(width - 15, 40)]}\n")
        for key, value in (s.get("extra") or {}).items():
            out.write(f"  {key}: {value}\n")
        out.write("\n")
    for d in picture.get("deliveries", []):
        progress = f" {bar(100 * d['progress'])}" if "progress" in d else ""
        detail = f"  {d['detail'][: max(width - 30, 40)]}" if d.get("detail") else ""
        out.write(f"delivery {d['file']}: {d['state']}{progress}{detail}\n")
    t = picture["totals"]
    out.write(
        f"total: {t['files']} files, {t['queued']} queued, {t['running']} running, {t['failed']} failed\n"
    )


def render_plain(picture: dict[str, Any], out: IO[str]) -> None:
    out.write(
        f"daemon running={str(picture['running']).lower()} pid={picture['pid'] or ''} source={picture['source']}\n"
    )
    for s in picture["services"]:
        c = s["counts"]
        line = (
            f"service={s['name']} state={s['state']} queued={c['queued']} running={c['running']} done={c['done']} "
            f"failed={c['failed']} duplicate={c['duplicate']} rows_loaded={s['rows_loaded']} "
            f"rows_rejected={s['rows_rejected']}"
        )
        if s["running"]:
            r = s["running"]
            line += f" file={r['path']} percent={r['percent']} eta_seconds={r['eta_seconds']}"
        out.write(line + "\n")
    for d in picture.get("deliveries", []):
        line = f"delivery={d['file']} state={d['state'].replace(' ', '_')}"
        if "progress" in d:
            line += f" progress={d['progress']}"
        if d.get("detail"):
            line += " detail=" + json.dumps(d["detail"])
        out.write(line + "\n")


def status_command(settings: Settings, pid: int | None, as_json: bool, out: IO[str] = sys.stdout) -> int:
    picture = gather(settings, pid)
    if as_json:
        out.write(json.dumps(picture, indent=2) + "\n")
    elif out.isatty():
        render_tty(picture, out)
    else:
        render_plain(picture, out)
    return 0 if pid else 1


def files_command(
    settings: Settings,
    service: str | None,
    state: str | None,
    limit: int,
    as_json: bool,
    out: IO[str] = sys.stdout,
) -> int:
    """Tracked files, newest first, from the tracking database."""
    monitor = Monitor(_scheduler(settings))
    monitor.snapshot()  # the read indexes, and a clear error if the database does not answer
    rows = monitor.scheduler.queue.page(service, state, None, limit)
    views = [monitor.file_view(r) for r in rows]
    if as_json:
        out.write(json.dumps(views, indent=2) + "\n")
        return 0
    for v in views:
        error = f"  {v['error'][:200]}" if v["error"] and v["state"] == states.FAILED else ""
        out.write(
            f"{v['id']:>7} {v['service']:<18} {v['state']:<9} {v['rows_loaded']:>9} {v['rows_rejected']:>6}"
            f"  {v['path']}{error}\n"
        )
    return 0
