"""`GET /metrics`: the daemon's state in the Prometheus text format, through prometheus_client.

Gauges come from the cached snapshot (files by service and state, rows loaded and rejected, the age
of the oldest queued file, the last successful run per service); the ingest-duration histogram
observes every file completed since this process started. `ingestor_tracking_database_up` is 0
(and the other families absent) while the tracking database does not answer, so a scrape still
succeeds and an alert can say why.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.snapshot import Monitor, Unavailable
from core import states

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf"))


class _StateCollector(Collector):
    def __init__(self, monitor: Monitor, histogram: Histogram) -> None:
        self.monitor = monitor
        self.histogram = histogram

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ingestor_tracking_database_up", "1 if the tracking database answers")
        try:
            if self.monitor.cached is None and self.monitor.problem is not None:
                # The request's own read has just failed: say so without a second wait for it.
                raise Unavailable(self.monitor.problem)
            snap = self.monitor.snapshot()
        except Unavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        while self.monitor.durations:
            service, seconds = self.monitor.durations.popleft()
            self.histogram.labels(service=service).observe(seconds)
        files = GaugeMetricFamily(
            "ingestor_files", "Tracked files by service and state", labels=["service", "state"]
        )
        loaded = GaugeMetricFamily(
            "ingestor_rows_loaded", "Rows (events for Clickstream) loaded, by service", labels=["service"]
        )
        rejected = GaugeMetricFamily(
            "ingestor_rows_rejected", "Rows or events rejected, by service", labels=["service"]
        )
        names = [s.name for s in self.monitor.scheduler.services]
        for name in sorted(set(names) | set(snap.summary)):
            by_state = snap.summary.get(name, {})
            for state in states.ALL:
                files.add_metric([name, state], by_state.get(state, (0, 0, 0))[0])
            kept = [by_state.get(s, (0, 0, 0)) for s in (states.DONE, states.FAILED)]
            loaded.add_metric([name], sum(k[1] for k in kept))
            rejected.add_metric([name], sum(k[2] for k in kept))
        yield files
        yield loaded
        yield rejected
        oldest = GaugeMetricFamily(
            "ingestor_oldest_queued_seconds", "Age of the oldest queued file (0: none)"
        )
        age = (snap.taken - snap.oldest_queued).total_seconds() if snap.oldest_queued else 0.0
        oldest.add_metric([], max(age, 0.0))
        yield oldest
        last = GaugeMetricFamily(
            "ingestor_last_success_timestamp_seconds",
            "Unix time of the last file done (or derived run) per service",
            labels=["service"],
        )
        for svc in self.monitor.scheduler.services:
            kind = "save_run" if svc.derived else "file"
            when = snap.completions.get((svc.name, kind, states.DONE))
            if when is not None:
                last.add_metric([svc.name], when.replace(tzinfo=UTC).timestamp())
        yield last


class Metrics:
    """The registry of one API instance (not the process-global one, so tests can run several)."""

    def __init__(self, monitor: Monitor) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.histogram = Histogram(
            "ingestor_ingest_duration_seconds",
            "Time from claim to completion of a file, by service",
            ["service"],
            buckets=BUCKETS,
            registry=None,
        )
        # The state collector drains the completed files into the histogram, so it comes first.
        self.registry.register(_StateCollector(monitor, self.histogram))
        self.registry.register(self.histogram)

    def render(self) -> bytes:
        return generate_latest(self.registry)
