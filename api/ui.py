"""`GET /ui`: the status page, rendered on the server from the same snapshot as the JSON answers.

One HTML page (api/ui.html) with inline CSS and JavaScript and no external asset. Without
JavaScript it is a plain table refreshed by a meta refresh; with it, the page swaps in
`/ui?part=main` every few seconds and the retry buttons ask for the token, which is sent only to
this server (a relative URL) and kept in the tab's sessionStorage.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.snapshot import Monitor, Snapshot

if TYPE_CHECKING:
    pass

REFRESH_SECONDS = 3
_ENV = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def chart(history: list[dict[str, Any]], width: int = 600, height: int = 120) -> dict[str, Any]:
    """Polylines of events and rows loaded per minute, scaled to the box."""
    if not history:
        return {"events": "", "rows": "", "max": 0, "first": "", "last": "", "width": width, "height": height}
    peak = max(max(h["events"], h["rows"]) for h in history) or 1
    step = width / max(len(history) - 1, 1)

    def line(key: str) -> str:
        points = []
        for i, h in enumerate(history):
            y = height - 4 - (height - 8) * h[key] / peak
            points.append(f"{i * step:.1f},{y:.1f}")
        if len(points) == 1:
            points.append(f"{width:.1f},{points[0].split(',')[1]}")
        return " ".join(points)

    return {
        "events": line("events"),
        "rows": line("rows"),
        "max": peak,
        "first": history[0]["minute"][11:16],
        "last": history[-1]["minute"][11:16],
        "width": width,
        "height": height,
    }


def render_page(monitor: Monitor, snap: Snapshot | None, problem: str | None, part: str | None = None) -> str:
    services = monitor.services(snap) if snap else []
    queued = sum(s["counts"]["queued"] for s in services)
    age = None
    if snap and snap.oldest_queued:
        age = (snap.taken - snap.oldest_queued).total_seconds()
    context = {
        "snap": snap,
        "problem": problem,
        "services": services,
        "queued": queued,
        "oldest_age": duration(age) if age is not None else "",
        "next": [monitor.file_view(r) for r in snap.queued] if snap else [],
        "failures": [monitor.file_view(r) for r in snap.failures] if snap else [],
        "chart": chart(snap.history if snap else []),
        "duration": duration,
        "refresh": REFRESH_SECONDS,
        "as_of": (snap.taken if snap else datetime.utcnow()).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    template = _ENV.get_template("ui.html")
    if part == "main":
        return "".join(template.blocks["main"](template.new_context(context)))
    return template.render(context)
