"""Deployment with Fabric 3, as the original: `fab prepare deploy` (hosts from FAB_HOSTS, or -H).

Settings come from config.py (as in the original): FAB_HOSTS, FAB_GITHUB_URL (the git URL the
hosts fetch from), FAB_REMOTE_PATH, and the optional FAB_* keys of config.example.py. A host holds

    FAB_REMOTE_PATH/releases/<time>-<commit>/   one checkout per deploy, its venv a link into venvs/
    FAB_REMOTE_PATH/venvs/<hash>/               one virtualenv per requirements.txt content (and
                                                native/eventscan sources, built into it where the
                                                host has cargo)
    FAB_REMOTE_PATH/current -> releases/...     what the service runs

and its own config file, /etc/default file and state directory, which a deploy never touches.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from fabric import Connection, task
from invoke.context import Context
from invoke.exceptions import Exit

HERE = Path(__file__).resolve().parent
SERVICE = "optimus-ingestor"
DEFAULTS: dict[str, Any] = {
    "FAB_HOSTS": [],
    "FAB_GITHUB_URL": "",
    "FAB_REMOTE_PATH": "/opt/optimus-ingestor",
    "FAB_USER": "ingestor",  # the unprivileged user the daemon runs as
    "FAB_CONFIG": "/etc/optimus-ingestor/config.py",  # the host's own config file
    "FAB_STATE_DIR": "/var/lib/optimus-ingestor",
    "FAB_PYTHON": "python3",  # the host's Python 3.11 that makes the virtualenvs
    "FAB_PIP_OPTIONS": "",  # e.g. "--find-links /srv/wheels" (a wheel directory); PyPI otherwise
    "FAB_SERVICE": "auto",  # "systemd", "init" or "auto" (systemd when it runs the host)
    "FAB_INIT_DIR": "/etc/init.d",
    "FAB_DEFAULTS_FILE": "/etc/default/optimus-ingestor",
    "FAB_HEALTH_URL": "http://127.0.0.1:8850/healthz",
    "FAB_HEALTH_TIMEOUT": 60,
    "FAB_KEEP_RELEASES": 5,
    "FAB_NATIVE": "auto",  # build native/eventscan where the host has cargo ("auto"), or "no"
    "FAB_CARGO_TARGET_DIR": "",  # cargo's build directory on the hosts; "" = FAB_REMOTE_PATH/cargo-target
}


def settings() -> dict[str, Any]:
    """The FAB_* keys of config.py (next to this file), over the defaults."""
    values = dict(DEFAULTS)
    path = HERE / "config.py"
    if path.exists():
        import sys

        sys.path.insert(0, str(HERE))
        from core.settings import read_python_file

        values.update(
            {k: v for k, v in read_python_file(path, "config file").items() if k.startswith("FAB_")}
        )
    return values


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(HERE), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _pushed_commit(s: dict[str, Any]) -> str:
    """HEAD, if the tree is committed and HEAD is the tip of a branch of FAB_GITHUB_URL; else Exit."""
    if not s["FAB_GITHUB_URL"]:
        raise Exit("FAB_GITHUB_URL is not set in config.py", code=1)
    dirty = _git("status", "--porcelain", "--untracked-files=normal")
    if dirty:
        raise Exit(f"uncommitted changes; commit (and push) them first:\n{dirty}", code=1)
    head = _git("rev-parse", "HEAD")
    remote = _git("ls-remote", "--heads", str(s["FAB_GITHUB_URL"]))
    if head not in {line.split()[0] for line in remote.splitlines() if line}:
        raise Exit(f"HEAD {head[:10]} is not pushed to {s['FAB_GITHUB_URL']}; push it first", code=1)
    return head


def _hosts(c: Context, s: dict[str, Any]) -> list[Connection]:
    if isinstance(c, Connection):  # fab -H host
        return [c]
    if not s["FAB_HOSTS"]:
        raise Exit("no hosts: set FAB_HOSTS in config.py or use fab -H", code=1)
    return [Connection(host, config=c.config) for host in s["FAB_HOSTS"]]


def _admin(c: Connection, command: str, **kwargs: Any) -> Any:
    """A command that needs root on the host (sudo unless we log in as root)."""
    if c.user == "root":
        return c.run(command, **kwargs)
    return c.sudo(command, **kwargs)


def _service_command(c: Connection, s: dict[str, Any], action: str) -> str:
    mode = s["FAB_SERVICE"]
    if mode == "auto":
        mode = "systemd" if c.run("test -d /run/systemd/system", warn=True, hide=True).ok else "init"
    if mode == "systemd":
        return f"systemctl {action} {SERVICE}"
    env = ""
    if s["FAB_DEFAULTS_FILE"] != DEFAULTS["FAB_DEFAULTS_FILE"]:
        env = f"OPTIMUS_INGESTOR_DEFAULTS={shlex.quote(s['FAB_DEFAULTS_FILE'])} "
    return f"{env}{shlex.quote(s['FAB_INIT_DIR'])}/{SERVICE} {action}"


def _install_service(c: Connection, s: dict[str, Any], release: str) -> None:
    if "systemctl" in _service_command(c, s, "status"):
        _admin(c, f"install -m 644 {release}/deploy/{SERVICE}.service /etc/systemd/system/{SERVICE}.service")
        _admin(c, f"systemctl daemon-reload && systemctl enable {SERVICE}", hide=True)
        return
    init_dir = shlex.quote(s["FAB_INIT_DIR"])
    _admin(c, f"mkdir -p {init_dir} && install -m 755 {release}/deploy/{SERVICE}.init {init_dir}/{SERVICE}")
    defaults = shlex.quote(s["FAB_DEFAULTS_FILE"])
    lines = [
        f"INGESTOR_HOME={s['FAB_REMOTE_PATH']}/current",
        f"INGESTOR_USER={s['FAB_USER']}",
        f"INGESTOR_CONFIG={s['FAB_CONFIG']}",
        f"INGESTOR_STATE_DIR={s['FAB_STATE_DIR']}",
    ]
    text = shlex.quote("\n".join(lines) + "\n")
    # The host's own settings: written once, never overwritten.
    _admin(c, f"test -e {defaults} || {{ mkdir -p $(dirname {defaults}) && printf %s {text} > {defaults}; }}")


def _healthy(c: Connection, s: dict[str, Any], python: str) -> bool:
    """Whether FAB_HEALTH_URL answers {"ok": true} within FAB_HEALTH_TIMEOUT seconds (asked on the host)."""
    probe = (
        "import json,sys,time,urllib.request\n"
        f"end=time.time()+{float(s['FAB_HEALTH_TIMEOUT'])}\n"
        "while time.time()<end:\n"
        "    try:\n"
        f"        ok=json.load(urllib.request.urlopen({s['FAB_HEALTH_URL']!r},timeout=3)).get('ok') is True\n"
        "    except Exception:\n"
        "        ok=False\n"
        "    if ok: sys.exit(0)\n"
        "    time.sleep(0.5)\n"
        "sys.exit(1)\n"
    )
    return bool(c.run(f"{python} -c {shlex.quote(probe)}", warn=True, hide=True).ok)


def _switch(c: Connection, root: str, release: str) -> None:
    """Point `current` at `release` atomically (a new link renamed over the old one)."""
    c.run(f"ln -sfn {release} {root}/current.new && mv -T {root}/current.new {root}/current")


def _restart(c: Connection, s: dict[str, Any]) -> bool:
    return bool(_admin(c, _service_command(c, s, "restart"), warn=True).ok)


@task
def prepare(c: Context) -> None:
    """Check that the work tree is committed and pushed to FAB_GITHUB_URL (it never commits for you)."""
    s = settings()
    head = _pushed_commit(s)
    print(f"ready to deploy {head[:10]} from {s['FAB_GITHUB_URL']}")


@task
def deploy(c: Context) -> None:
    """On each host: fetch the pushed commit into a new release, venv, switch `current`, restart, check
    /healthz; roll back to the previous release when it does not come up."""
    s = settings()
    head = _pushed_commit(s)
    for conn in _hosts(c, s):
        _deploy_host(conn, s, head)


def _build_native(c: Connection, s: dict[str, Any], root: str, release: str, venv: str) -> None:
    """Build native/eventscan into the venv where the host has cargo (on PATH or rustup's
    ~/.cargo/bin), as scripts/setup.sh does; without it the loader uses its Python parser."""
    target = (
        shlex.quote(str(s["FAB_CARGO_TARGET_DIR"])) if s["FAB_CARGO_TARGET_DIR"] else f"{root}/cargo-target"
    )
    built = c.run(
        'PATH="$PATH:$HOME/.cargo/bin"; command -v cargo >/dev/null && '
        f"CARGO_TARGET_DIR={target} {venv}/bin/pip install -q --disable-pip-version-check "
        f"{s['FAB_PIP_OPTIONS']} {release}/native/eventscan",
        warn=True,
    )
    if built.ok:
        c.run(f"touch {venv}/.eventscan")
    else:
        print(
            f"{c.host}: native/eventscan not built (no cargo, or the build failed); the loader uses its Python parser"
        )


def _deploy_host(c: Connection, s: dict[str, Any], head: str) -> None:
    root = shlex.quote(str(s["FAB_REMOTE_PATH"]).rstrip("/"))
    release = f"{root}/releases/{time.strftime('%Y%m%d%H%M%S')}-{head[:10]}"
    url = shlex.quote(str(s["FAB_GITHUB_URL"]))
    c.run(f"mkdir -p {root}/releases {root}/venvs")
    c.run(
        f"git clone --quiet --no-checkout {url} {release} && git -C {release} checkout --quiet --detach {head}"
    )
    requirements = c.run(f"cat {release}/requirements.txt", hide=True).stdout
    # the compiled pass's sources (their git tree id) are part of the venv's key: a release never
    # runs another release's build of it, nor a rollback a newer one
    native = ""
    if s["FAB_NATIVE"] != "no":
        found = c.run(f"git -C {release} rev-parse --verify -q HEAD:native/eventscan", warn=True, hide=True)
        native = found.stdout.strip() if found.ok else ""
    venv = f"{root}/venvs/{hashlib.sha256((requirements + native).encode()).hexdigest()[:16]}"
    if not c.run(f"test -e {venv}/.complete", warn=True, hide=True).ok:
        c.run(f"rm -rf {venv} && {s['FAB_PYTHON']} -m venv {venv}")
        c.run(
            f"{venv}/bin/pip install -q --disable-pip-version-check {s['FAB_PIP_OPTIONS']} "
            f"-r {release}/requirements.txt && touch {venv}/.complete"
        )
    if native and not c.run(f"test -e {venv}/.eventscan", warn=True, hide=True).ok:
        _build_native(c, s, root, release, venv)  # again at each deploy until it is built
    c.run(f"ln -sfn {venv} {release}/venv")
    previous = c.run(f"readlink {root}/current", warn=True, hide=True).stdout.strip()
    _install_service(c, s, release)
    _switch(c, root, release)
    if _restart(c, s) and _healthy(c, s, f"{release}/venv/bin/python"):
        print(f"{c.host}: {head[:10]} deployed and healthy")
        _prune(c, root, int(s["FAB_KEEP_RELEASES"]), release, previous)
        return
    if not previous:
        raise Exit(f"{c.host}: {head[:10]} did not come up, and there is no previous release", code=1)
    _switch(c, root, previous)
    _install_service(c, s, previous)
    back = _restart(c, s) and _healthy(c, s, f"{previous}/venv/bin/python")
    state = "healthy" if back else "NOT healthy either"
    raise Exit(f"{c.host}: {head[:10]} did not come up; rolled back to {previous} ({state})", code=1)


def _prune(c: Connection, root: str, keep: int, *protected: str) -> None:
    """Remove the releases beyond the newest `keep`, then the finished venvs none of the others
    links to (one being made by another deploy has no `.complete` yet and is left alone)."""
    listing = c.run(f"ls -1 {root}/releases", hide=True).stdout.split()
    for name in sorted(listing)[:-keep] if keep > 0 else []:
        path = f"{root}/releases/{name}"
        if path not in protected:
            c.run(f"rm -rf {shlex.quote(path)}")
    linked = c.run(f'for r in {root}/releases/*; do readlink "$r/venv"; done', warn=True, hide=True).stdout
    used = {line.rstrip("/").rsplit("/", 1)[-1] for line in linked.split()}
    finished = c.run(f"ls -1 {root}/venvs/*/.complete", warn=True, hide=True).stdout.split()
    for name in {line.rsplit("/", 2)[-2] for line in finished} - used:
        c.run(f"rm -rf {root}/venvs/{shlex.quote(name)}")


@task
def rollback(c: Context) -> None:
    """On each host: switch `current` back to the release before it and restart."""
    s = settings()
    for conn in _hosts(c, s):
        root = shlex.quote(str(s["FAB_REMOTE_PATH"]).rstrip("/"))
        current = conn.run(f"readlink {root}/current", hide=True).stdout.strip()
        releases = sorted(conn.run(f"ls -1d {root}/releases/*", hide=True).stdout.split())
        older = [r for r in releases if r < current]
        if not older:
            raise Exit(f"{conn.host}: no release before {current}", code=1)
        _switch(conn, root, older[-1])
        if not (_restart(conn, s) and _healthy(conn, s, f"{older[-1]}/venv/bin/python")):
            raise Exit(f"{conn.host}: {older[-1]} did not come up", code=1)


@task
def status(c: Context) -> None:
    """On each host: the service's status, the release `current` points at, and /healthz."""
    s = settings()
    for conn in _hosts(c, s):
        _admin(conn, _service_command(conn, s, "status"), warn=True)
        conn.run(f"readlink {shlex.quote(str(s['FAB_REMOTE_PATH']))}/current", warn=True)
        print("healthy" if _healthy(conn, {**s, "FAB_HEALTH_TIMEOUT": 5}, "python3") else "not healthy")
