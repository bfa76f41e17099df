"""Deliveries: edX's encrypted deliveries, decrypted and laid out where the other services read.

Input: files in INCOMING_PATHS (scanned recursively, e.g. the target of an `aws s3 sync`) named as
edX names them: the weekly `{org}-YYYY-MM-DD.zip` of `.gpg` members and the daily
`{org}-edx-events-YYYY-MM-DD.log.gz.gpg` (and `-edge-`) logs. Output, in DELIVERIES_TARGET (the
first of DATA_PATHS by default), see layout.py: the weekly dump in `database_state/<date>/`, with
`latest` moved to it once every member is in place; each daily log, still gzipped, in the
directory `clickstream_logs/latest` points to, marked complete so that Clickstream does not hold
it back. A member that cannot be written (unsafe path, not an edX name, wrong key, corrupt packet,
decompression bomb) is reported with its name and reason, and the rest is published; the tracking
row is then failed with the list. The same content delivered again is not unpacked again; new
content for a date already published replaces it. This service runs first (`first`), and the
daemon scans again as soon as it published something, so one `run --once` goes all the way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from base_service import Context, Entry, IngestResult, Service
from core.errors import Interrupted, TerminalError, TransientError
from services.deliveries import layout
from services.deliveries.gpg import DecryptError, GnuPG, OutputLimit
from services.deliveries.names import (
    OTHER_FOLDERS,
    Delivery,
    MemberProblem,
    classify,
    is_folder_entry,
    member_target,
)
from utils.delivered import mark_delivered
from utils.fingerprint import file_fingerprint

AREA = "incoming"
# Zip bomb: an OpenPGP member is incompressible, so a zip member (or a whole archive) declaring
# far more bytes than it occupies is refused. gpg's own compression of a dump may legitimately
# reach a few dozen times: past GPG_RATIO (and a floor for small files) the output is refused too.
ZIP_RATIO = 100
GPG_RATIO = 250
GPG_FLOOR = 64 << 20
GZIP_MAGIC = b"\x1f\x8b"
RECENT = 30  # deliveries shown in /status
log = logging.getLogger("ingestor.Deliveries")


def sha256_of(path: Path, progress: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
            progress(len(block))
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Unpacked:
    """What the members of one weekly zip gave."""

    files: int = 0
    written: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


class DeliveriesService(Service):
    name = "Deliveries"
    first = True

    def __init__(self) -> None:
        self.root = Path("data")
        self.incoming: tuple[Path, ...] = ()
        self.keep_originals = True
        self.space_limit = 0
        self.gpg = GnuPG()
        self._published = False
        self._deliveries: dict[str, dict[str, Any]] = {}
        self._status: dict[str, object] = {}

    # -- set-up and status ----------------------------------------------------------------------

    def start(self, ctx: Context) -> None:
        s = ctx.settings
        self.root = s.deliveries_target
        self.incoming = tuple(s.INCOMING_PATHS)
        self.keep_originals = s.DELIVERIES_KEEP_ORIGINALS
        self.space_limit = s.DELIVERIES_SPACE_LIMIT
        self.gpg = GnuPG(s.GNUPG_HOME, s.GNUPG_PASSPHRASE_FILE)
        self._status.update(incoming=[str(p) for p in self.incoming], target=str(self.root))
        if not self.incoming:
            return
        if shutil.which("gpg") is None:
            ctx.log.error("INCOMING_PATHS is set but gpg is not installed (Debian package gnupg)")
        if self.root.resolve() not in {p.resolve() for p in s.DATA_PATHS}:
            ctx.log.warning(
                "DELIVERIES_TARGET %s is not one of DATA_PATHS: the daemon will not read it", self.root
            )
        if s.GNUPG_PASSPHRASE_FILE:
            mode = os.stat(s.GNUPG_PASSPHRASE_FILE).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                ctx.log.warning("GNUPG_PASSPHRASE_FILE %s is readable by others", s.GNUPG_PASSPHRASE_FILE)
        for manifest in layout.recent_manifests(self.root, RECENT):
            self._note(str(manifest.get("name", "?")), _manifest_state(manifest), manifest.get("detail", ""))

    def status_extra(self, ctx: Context) -> dict[str, object]:
        # The same dict every time, kept up to date here, so /status shows each delivery live.
        return self._status

    def _note(self, name: str, state: str, detail: str = "", progress: float | None = None) -> None:
        info: dict[str, Any] = {"state": state, "since": _now()}
        if detail:
            info["detail"] = detail[:2000]
        if progress is not None:
            info["progress"] = round(progress, 3)
        kept = {k: v for k, v in self._deliveries.items() if k != name}
        kept[name] = info
        self._deliveries = dict(list(kept.items())[-RECENT:])
        self._status["deliveries"] = self._deliveries  # a new dict: readers never see one change

    def rescan_wanted(self) -> bool:
        published, self._published = self._published, False
        return published

    # -- scanning -------------------------------------------------------------------------------

    def wants(self, entry: Entry) -> bool:
        if entry.area != AREA or entry.is_dir or entry.path.parent.name in OTHER_FOLDERS:
            return False
        if classify(entry.path.name) is None:
            return False
        if not self.keep_originals and self._remove_if_published(entry.path):
            return False
        if entry.path.name not in self._deliveries:
            self._note(entry.path.name, "found")
        return True

    def _remove_if_published(self, path: Path) -> bool:
        """DELIVERIES_KEEP_ORIGINALS off: remove an original whose delivery is published in full."""
        manifest = layout.read_manifest(self.root, path.name)
        if (
            manifest is None
            or manifest.get("source") != str(path)
            or manifest.get("fingerprint") != file_fingerprint(path)
            or manifest.get("failures")
            or not Path(str(manifest.get("published", ""))).exists()
        ):
            return False
        try:
            path.unlink()
        except OSError as exc:
            log.warning("%s: published, but the original cannot be removed: %s", path, exc)
            return False
        log.info(
            "%s: published at %s; original removed (DELIVERIES_KEEP_ORIGINALS off)",
            path,
            manifest["published"],
        )
        return True

    # -- ingesting ------------------------------------------------------------------------------

    def ingest(self, path: Path, ctx: Context) -> IngestResult:
        delivery = classify(path.name)
        if delivery is None:
            raise TerminalError(f"{path}: not an edX delivery name")
        self._note(path.name, "unpacking", progress=0.0)
        try:
            result = self._ingest(path, delivery, ctx)
        except (Interrupted, TransientError) as exc:
            self._note(path.name, "found", f"to be tried again: {exc}")
            raise
        except Exception as exc:
            self._note(path.name, "failed", str(exc))
            raise
        if result.failed:
            self._note(path.name, "failed", result.failed)
        else:
            self._note(path.name, "unpacked", "; ".join(result.warnings))
        return result

    def _ingest(self, path: Path, delivery: Delivery, ctx: Context) -> IngestResult:
        before = file_fingerprint(path)
        size = max(path.stat().st_size, 1)
        hashed = [0]

        def hashing(n: int) -> None:
            hashed[0] += n
            ctx.progress(0.1 * hashed[0] / size)

        sha = sha256_of(path, hashing)
        previous = layout.read_manifest(self.root, path.name)
        if (
            previous is not None
            and previous.get("sha256") == sha
            and not previous.get("failures")
            and Path(str(previous.get("published", ""))).exists()
        ):
            warnings = [
                f"same content as the delivery published at {previous['published']} "
                f"({previous.get('published_at', '?')}); not unpacked again"
            ]
            if delivery.kind == "weekly":
                warnings += self._point_latest(self.root / layout.DATABASE_STATE, delivery)
            ctx.log.info("%s: %s", path, warnings[0])
            files = int(previous.get("files", 0))  # what the published delivery holds, as the first time
            return IngestResult(content_hash=sha, dedupe=True, warnings=warnings, rows_loaded=files)
        manifest: dict[str, Any] = {
            "name": path.name,
            "kind": delivery.kind,
            "org": delivery.org,
            "date": delivery.day.isoformat(),
            "source": str(path),
            "sha256": sha,
            "version": int((previous or {}).get("version", 0)) + 1,
        }
        if delivery.kind == "weekly":
            return self._weekly(path, delivery, ctx, before, manifest)
        return self._daily(path, ctx, before, manifest)

    def _finish(
        self, manifest: dict[str, Any], before: str, failures: list[tuple[str, str]], detail: str
    ) -> None:
        manifest.update(
            fingerprint=before,
            failures=[{"member": m, "reason": r} for m, r in failures],
            published_at=_now(),
            detail=detail,
        )
        layout.write_manifest(self.root, manifest["name"], manifest)
        self._published = True

    # -- the weekly zip -------------------------------------------------------------------------

    def _weekly(
        self, path: Path, d: Delivery, ctx: Context, before: str, manifest: dict[str, Any]
    ) -> IngestResult:
        area = self.root / layout.DATABASE_STATE
        area.mkdir(parents=True, exist_ok=True)
        day = d.day.isoformat()
        self._check_one_org(d)
        with layout.locked(self.root, day):
            try:
                archive = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise TerminalError(
                    f"{path}: truncated or not a zip archive ({exc}); nothing unpacked"
                ) from exc
            with archive:
                infos = archive.infolist()
                archive_size = max(path.stat().st_size, 1)
                declared = sum(i.file_size for i in infos)
                if declared > ZIP_RATIO * archive_size + (1 << 20):
                    raise TerminalError(
                        f"{path}: refused as a zip bomb: its members declare {declared} bytes "
                        f"in a {archive_size}-byte archive"
                    )
                available = layout.free_bytes(area, self.space_limit)
                if declared > available:
                    raise TerminalError(
                        f"{path}: not enough space in {area}: the members need at least {declared} bytes, "
                        f"{available} are available; nothing unpacked"
                    )
                staging = area / f".{day}.unpacking"
                if staging.exists():
                    shutil.rmtree(staging)  # what a crashed attempt left
                staging.mkdir()
                try:
                    unpacked = self._unpack(archive, infos, staging, d, available, ctx)
                    if not unpacked.files:
                        raise TerminalError(
                            f"{path}: no member could be decrypted: {_listing(unpacked.failures)}"
                        )
                    if file_fingerprint(path) != before:
                        raise TransientError(f"{path}: the file changed while it was being unpacked")
                    ctx.check_unchanged()  # also against the scheduler's fingerprint, taken earlier
                    for folder in (staging, *[p for p in staging.iterdir() if p.is_dir()]):
                        layout.fsync_path(folder, directory=True)
                    final = area / day
                    layout.replace_dir(staging, final)
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
            detail = f"published {final} ({unpacked.files} files, {unpacked.written} bytes)"
            manifest["published"] = str(final)
            manifest["files"] = unpacked.files
            self._finish(manifest, before, unpacked.failures, detail)
            warnings = self._point_latest(area, d)
        ctx.log.info("%s: %s", path, detail)
        failed = None
        if unpacked.failures:
            failed = (
                f"{path}: {detail}; {len(unpacked.failures)} member(s) failed: {_listing(unpacked.failures)}"
            )
        return IngestResult(
            rows_loaded=unpacked.files,
            rows_rejected=len(unpacked.failures),
            content_hash=manifest["sha256"],
            dedupe=True,
            warnings=warnings,
            failed=failed,
        )

    def _unpack(
        self,
        archive: zipfile.ZipFile,
        infos: list[zipfile.ZipInfo],
        staging: Path,
        d: Delivery,
        available: int,
        ctx: Context,
    ) -> Unpacked:
        done = Unpacked()
        total = max(sum(i.compress_size for i in infos), 1)
        fed = [0]

        def feeding(n: int) -> None:
            fed[0] += n
            ctx.progress(0.1 + 0.9 * min(fed[0] / total, 1.0))
            self._deliveries_progress(d.name, 0.1 + 0.9 * min(fed[0] / total, 1.0))

        for info in infos:
            if info.is_dir():
                if not is_folder_entry(info, d.folder):
                    done.failures.append((info.filename, "not in edX's layout (an unexpected folder)"))
                continue
            try:
                rel = member_target(info, d.folder)
                if info.file_size > ZIP_RATIO * info.compress_size + (64 << 10):
                    raise MemberProblem(
                        f"refused as a zip bomb: declares {info.file_size} bytes in {info.compress_size}"
                    )
                budget = available - done.written
                cap = max(GPG_RATIO * info.file_size, GPG_FLOOR)
                out = staging / rel
                out.parent.mkdir(exist_ok=True)
                temp = out.with_name(f".{out.name}.partial")
                with archive.open(info) as source:
                    written = self.gpg.decrypt(
                        source,
                        temp,
                        min(cap, budget),
                        _limit_message(budget, cap, info.file_size),
                        progress=feeding,
                        should_stop=ctx.should_stop,
                    )
                _check_gzip(temp, rel)
                layout.fsync_path(temp)
                os.rename(temp, out)
                done.files += 1
                done.written += written
            except OutputLimit as exc:
                if str(exc).startswith("not enough space"):
                    raise TerminalError(f"{d.name}: {info.filename}: {exc}; nothing published") from exc
                done.failures.append((info.filename, str(exc)))
            except (MemberProblem, DecryptError) as exc:
                done.failures.append((info.filename, str(exc)))
            except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
                done.failures.append((info.filename, f"corrupt zip member: {exc}"))
            if ctx.should_stop():
                raise Interrupted("stop requested while unpacking")
        return done

    def _deliveries_progress(self, name: str, fraction: float) -> None:
        info = self._deliveries.get(name)
        if (
            info is not None
            and info.get("state") == "unpacking"
            and fraction - info.get("progress", 0) >= 0.01
        ):
            self._note(name, "unpacking", progress=fraction)

    def _point_latest(self, area: Path, d: Delivery) -> list[str]:
        """Move `database_state/latest` to the delivery, unless it points to a newer one."""
        current = layout.latest_day(area)
        if current is not None and current > d.day:
            return [f"database_state/latest stays at the newer {current}"]
        if current != d.day or not (area / "latest").is_symlink():
            layout.point_latest(area, d.day.isoformat())
            self._published = True
        return []

    def _check_one_org(self, d: Delivery) -> None:
        """A dated directory holds one org's delivery: another org's of the same date is refused."""
        folder = self.root / layout.MANIFESTS
        for path in folder.glob(f"*-{d.day.isoformat()}.zip.json") if folder.is_dir() else ():
            other = classify(path.name[: -len(".json")])
            if other is not None and other.org.lower() != d.org.lower():
                raise TerminalError(
                    f"{d.name}: {self.root}/database_state/{d.day} holds {other.org}'s delivery of that "
                    "date; use one DELIVERIES_TARGET per org"
                )

    # -- a daily log ----------------------------------------------------------------------------

    def _daily(self, path: Path, ctx: Context, before: str, manifest: dict[str, Any]) -> IngestResult:
        with layout.locked(self.root, path.name):
            folder = layout.clickstream_dir(self.root)
            out = folder / path.name[: -len(".gpg")]
            temp = folder / f".{out.name}.partial"
            size = max(path.stat().st_size, 1)
            available = layout.free_bytes(folder, self.space_limit)
            if size > available:
                raise TerminalError(
                    f"{path}: not enough space in {folder}: {size} bytes needed, {available} available"
                )
            cap = max(GPG_RATIO * size, GPG_FLOOR)
            fed = [0]

            def feeding(n: int) -> None:
                fed[0] += n
                ctx.progress(0.1 + 0.9 * min(fed[0] / size, 1.0))

            try:
                with path.open("rb") as source:
                    written = self.gpg.decrypt(
                        source,
                        temp,
                        min(cap, available),
                        _limit_message(available, cap, size),
                        progress=feeding,
                        should_stop=ctx.should_stop,
                    )
                _check_gzip(temp, out.name)
            except (DecryptError, MemberProblem) as exc:
                raise TerminalError(f"{path}: {exc}; not placed") from exc
            if file_fingerprint(path) != before:
                temp.unlink(missing_ok=True)
                raise TransientError(f"{path}: the file changed while it was being decrypted")
            try:
                ctx.check_unchanged()  # also against the scheduler's fingerprint, taken earlier
            except TransientError:
                temp.unlink(missing_ok=True)
                raise
            layout.fsync_path(temp)
            mark_delivered(out)  # before it appears, so it is never taken for a growing file
            os.replace(temp, out)
            layout.fsync_path(folder, directory=True)
            detail = f"published {out} ({written} bytes)"
            manifest["published"] = str(out)
            manifest["files"] = 1
            self._finish(manifest, before, [], detail)
        ctx.log.info("%s: %s", path, detail)
        return IngestResult(rows_loaded=1, content_hash=manifest["sha256"], dedupe=True)


def _limit_message(budget: int, cap: int, declared: int) -> Callable[[int], str]:
    """What to say when a member's output passes min(budget, cap) bytes."""

    def message(size: int) -> str:
        if size > budget and budget <= cap:
            return f"not enough space: the output passed the {budget} bytes available"
        return f"refused as a decompression bomb: {declared} encrypted bytes decrypt to more than {cap}"

    return message


def _check_gzip(path: Path, name: str) -> None:
    if name.endswith(".gz"):
        with path.open("rb") as stream:
            if stream.read(2) != GZIP_MAGIC:
                path.unlink(missing_ok=True)
                raise MemberProblem("decrypted, but not gzip data as its name says")


def _listing(failures: list[tuple[str, str]]) -> str:
    return "; ".join(f"{member}: {reason}" for member, reason in failures)


def _manifest_state(manifest: dict[str, Any]) -> str:
    return "failed" if manifest.get("failures") else "unpacked"
