"""Configuration, resolved once at start into one typed, immutable object.

Sources, later ones winning: the defaults below < the config file (`config.py`, a Python module as
in the original) < `INGESTOR_<KEY>` environment variables (lists separated by `:`) < `--set KEY=VALUE`
on the command line. Every invalid value is reported together, naming where it came from.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Every setting, with its default. config.example.py documents each one."""

    DATA_PATHS: tuple[Path, ...] = (Path("examples/data"),)
    ALLOWED_ROOTS: tuple[Path, ...] = ()  # where links in the data may lead (empty: DATA_PATHS)
    STATE_DIR: Path = Path("var")
    SQL_URL: str = "sqlite"
    MONGO_URL: str = "sqlite"
    COURSES_FILE: Path = Path("courses.py")
    SCAN_INTERVAL: int = 300
    SERVICES: tuple[str, ...] = ()
    IGNORE_SERVICES: tuple[str, ...] = ()
    API_ENABLED: bool = True
    API_HOST: str = "127.0.0.1"
    API_PORT: int = 8850
    API_TOKEN: str = ""
    LEGACY_SCHEMA: bool = False
    DUMP_MAX_RECORD_BYTES: int = 128 << 20
    TRACKING_DATABASE: str = "api"
    DOCUMENT_DB_PREFIX: str = ""
    GEOIP_DATABASE: str = ""
    CLICKSTREAM_HOLD_NEWEST: bool = True
    CLICKSTREAM_BATCH: int = 20000
    MAX_LINE_BYTES: int = 8 << 20  # longer lines of logs and forum dumps are rejected as too long
    PERSON_COURSE_EXPORTS_KEEP: int = 7
    MAX_ATTEMPTS: int = 3
    LEASE_SECONDS: int = 120
    HEARTBEAT_SECONDS: int = 10
    RETRY_BACKOFF_SECONDS: int = 30
    WORKER_NAME: str = ""
    # Encrypted deliveries (services/deliveries): where they land, where they are laid out.
    INCOMING_PATHS: tuple[Path, ...] = ()
    DELIVERIES_TARGET: str = ""  # empty: the first of DATA_PATHS
    DELIVERIES_KEEP_ORIGINALS: bool = True
    DELIVERIES_SPACE_LIMIT: int = 0  # bytes a delivery may write at most (0: the free space)
    GNUPG_HOME: str = ""  # empty: gpg's default (~/.gnupg)
    GNUPG_PASSPHRASE_FILE: str = ""

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        """The directories a data file, a `latest` link or a link in a course export may lead into
        (the incoming directories of deliveries always among them)."""
        return (self.ALLOWED_ROOTS or self.DATA_PATHS) + self.INCOMING_PATHS

    # Directories derived from STATE_DIR.
    @property
    def deliveries_target(self) -> Path:
        """The data root deliveries are laid out in."""
        return Path(self.DELIVERIES_TARGET) if self.DELIVERIES_TARGET else self.DATA_PATHS[0]

    @property
    def log_dir(self) -> Path:
        return self.STATE_DIR / "logs"

    @property
    def rejects_dir(self) -> Path:
        return self.STATE_DIR / "rejects"

    @property
    def output_dir(self) -> Path:
        return self.STATE_DIR / "www"

    @property
    def export_dir(self) -> Path:
        return self.STATE_DIR / "exports"

    @property
    def tmp_dir(self) -> Path:
        return self.STATE_DIR / "tmp"

    def document_db(self, name: str) -> str:
        """The document database `name` (logs, discussion_forum), with DOCUMENT_DB_PREFIX."""
        return f"{self.DOCUMENT_DB_PREFIX}{name}"

    @property
    def pid_file(self) -> Path:
        return self.STATE_DIR / "ingestor.pid"


_KEYS = {f.name: f for f in fields(Settings)}
_PATH_LISTS = ("DATA_PATHS", "ALLOWED_ROOTS", "INCOMING_PATHS")
_DEFAULTS = Settings()


def _coerce(key: str, value: Any, source: str, problems: list[str]) -> Any:
    """Convert `value` to the type of `key`'s default; record a problem instead of raising."""
    default = getattr(_DEFAULTS, key)
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if isinstance(default, int):
            number = int(value)
            if number < 0:
                raise ValueError(f"must not be negative: {number}")
            return number
        if isinstance(default, Path):
            return Path(os.path.expanduser(str(value)))
        if isinstance(default, tuple):
            items = value.split(":") if isinstance(value, str) else list(value)
            items = [str(i) for i in items if str(i)]
            if key in _PATH_LISTS:
                return tuple(Path(os.path.expanduser(i)) for i in items)
            return tuple(items)
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        return value
    except (TypeError, ValueError) as exc:
        problems.append(f"{key} (from {source}): {exc}")
        return default


def read_python_file(path: Path, label: str) -> dict[str, Any]:
    """The upper-case names a Python file (config.py, courses.py) defines; any error in it is a
    ConfigError naming `label` and the file."""
    spec = importlib.util.spec_from_file_location(f"ingestor_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError([f"{label} {path}: cannot be loaded"])
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError([f"{label} {path}: {type(exc).__name__}: {exc}"]) from exc
    return {k: v for k, v in vars(module).items() if k.isupper()}


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Settings:
    """Resolve every setting; relative paths are taken from `base_dir` (default: the repo)."""
    environ = os.environ if environ is None else environ
    base_dir = base_dir or REPO
    problems: list[str] = []
    values: dict[str, Any] = {}

    if config_file is None and environ.get("INGESTOR_CONFIG"):
        config_file = Path(environ["INGESTOR_CONFIG"])
    if config_file is None and (base_dir / "config.py").exists():
        config_file = base_dir / "config.py"
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if config_file is not None:
        if not config_file.exists():
            problems.append(f"config file {config_file}: does not exist")
        else:
            layers.append((str(config_file), read_python_file(config_file, "config file")))
    env_values = {k[len("INGESTOR_") :]: v for k, v in environ.items() if k.startswith("INGESTOR_")}
    env_values.pop("CONFIG", None)
    layers.append(("environment", env_values))
    layers.append(("command line", dict(overrides or {})))

    for source, layer in layers:
        for key, value in layer.items():
            if key in _KEYS:
                values[key] = _coerce(key, value, source, problems)
            elif source == "environment" and key.startswith("TEST_"):
                continue  # the test suite's own variables
            else:
                close = difflib.get_close_matches(key, _KEYS, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(f"{key} (from {source}): unknown setting{hint}")

    for key in _PATH_LISTS:
        if key in values:
            values[key] = tuple(p if p.is_absolute() else base_dir / p for p in values[key])
    for key in ("STATE_DIR", "COURSES_FILE"):
        if key in values and not values[key].is_absolute():
            values[key] = base_dir / values[key]
    for key in ("DELIVERIES_TARGET", "GNUPG_HOME", "GNUPG_PASSPHRASE_FILE"):
        if values.get(key) and not Path(os.path.expanduser(values[key])).is_absolute():
            values[key] = str(base_dir / values[key])
    courses_set = "COURSES_FILE" in values  # a missing default registry is only a warning
    values.setdefault("DATA_PATHS", tuple(base_dir / p for p in _DEFAULTS.DATA_PATHS))
    values.setdefault("STATE_DIR", base_dir / _DEFAULTS.STATE_DIR)
    values.setdefault("COURSES_FILE", base_dir / _DEFAULTS.COURSES_FILE)

    settings = Settings(**values)
    problems.extend(_validate(settings))
    if courses_set and not settings.COURSES_FILE.is_file():
        problems.append(f"COURSES_FILE: {settings.COURSES_FILE} is not a file")
    if problems:
        raise ConfigError(problems)
    return settings


def _validate(s: Settings) -> list[str]:
    problems = []
    if s.SQL_URL != "sqlite" and not s.SQL_URL.startswith("mysql://"):
        problems.append(f"SQL_URL: expected 'sqlite' or 'mysql://user:password@host:port', got {s.SQL_URL!r}")
    if s.MONGO_URL != "sqlite" and not s.MONGO_URL.startswith("mongodb://"):
        problems.append(f"MONGO_URL: expected 'sqlite' or 'mongodb://host:port/', got {s.MONGO_URL!r}")
    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", s.TRACKING_DATABASE):
        problems.append(f"TRACKING_DATABASE: {s.TRACKING_DATABASE!r} is not a valid database name")
    if s.DOCUMENT_DB_PREFIX and not re.fullmatch(r"[A-Za-z0-9_]{1,20}", s.DOCUMENT_DB_PREFIX):
        problems.append(f"DOCUMENT_DB_PREFIX: {s.DOCUMENT_DB_PREFIX!r} must be letters, digits or _")
    if s.GEOIP_DATABASE and not Path(s.GEOIP_DATABASE).is_file():
        problems.append(f"GEOIP_DATABASE: {s.GEOIP_DATABASE} is not a file")
    if s.CLICKSTREAM_BATCH < 1:
        problems.append("CLICKSTREAM_BATCH: must be at least 1")
    if not 1024 <= s.MAX_LINE_BYTES <= 16 << 20:
        problems.append("MAX_LINE_BYTES: must be between 1024 and 16777216 (a MongoDB document's limit)")
    if not s.DATA_PATHS:
        problems.append("DATA_PATHS: at least one data directory is needed")
    if s.SCAN_INTERVAL < 1:
        problems.append("SCAN_INTERVAL: must be at least 1 second")
    if not 0 < s.API_PORT < 65536:
        problems.append(f"API_PORT: {s.API_PORT} is not a TCP port")
    if s.API_ENABLED and (why := _unresolvable(s.API_HOST)):
        problems.append(f"API_HOST: {s.API_HOST!r} is not an address the status API can listen on ({why})")
    if s.MAX_ATTEMPTS < 1:
        problems.append("MAX_ATTEMPTS: must be at least 1")
    if s.HEARTBEAT_SECONDS < 1 or s.LEASE_SECONDS <= s.HEARTBEAT_SECONDS:
        problems.append("LEASE_SECONDS must be larger than HEARTBEAT_SECONDS (at least 1)")
    if s.GNUPG_HOME and not Path(s.GNUPG_HOME).is_dir():
        problems.append(f"GNUPG_HOME: {s.GNUPG_HOME} is not a directory")
    if s.GNUPG_PASSPHRASE_FILE and not Path(s.GNUPG_PASSPHRASE_FILE).is_file():
        problems.append(f"GNUPG_PASSPHRASE_FILE: {s.GNUPG_PASSPHRASE_FILE} is not a file")
    clash = set(s.SERVICES) & set(s.IGNORE_SERVICES)
    if clash:
        problems.append(f"SERVICES and IGNORE_SERVICES both name {sorted(clash)}")
    return problems


def _unresolvable(host: str) -> str | None:
    """Why `host` cannot be listened on (it does not resolve), or None."""
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        return str(getattr(exc, "strerror", None) or exc)
    return None


def prepare_state_dir(settings: Settings) -> None:
    """Create STATE_DIR (and its logs/ and tmp/) and check it can be written; a ConfigError naming
    STATE_DIR otherwise, so that a bad value ends with exit status 2, not a traceback."""
    try:
        for directory in (settings.STATE_DIR, settings.log_dir, settings.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=settings.STATE_DIR):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError([f"STATE_DIR: {settings.STATE_DIR} cannot be created or written ({why})"]) from exc
