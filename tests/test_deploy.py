"""`fab prepare` and `fab deploy` for real: an OpenSSH server started by the test on a spare
loopback port with a key made for it, deploying to a directory on this machine from a bare git
repository made by the test: a first deploy, a second one of a new commit, and a broken commit that
is rolled back with the previous release still serving /healthz."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy_support import CACHE, copy_code, service_account, wheelhouse, world_readable_dir
from tests.packages import AUTH_USER_HEADER, make_package, write_dump
from tests.test_daemon_process import free_port, wait_for

SSHD = Path("/usr/sbin/sshd")
FAB = Path(sys.executable).parent / "fab"


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An sshd on 127.0.0.1:<spare port> accepting only a key made here; yields (host, private key)."""
    assert SSHD.exists(), "openssh-server missing: run scripts/install_deploy_tools.sh"
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "client")], check=True)
    (keys / "authorized_keys").write_text((keys / "client.pub").read_text())
    (keys / "authorized_keys").chmod(0o600)
    port = free_port()
    config = keys / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\nPidFile {keys / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
        f"AllowUsers {getpass.getuser()}\nSetEnv PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        import socket

        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "sshd exited")
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return True
            except OSError:
                return False

        wait_for(listening, timeout=30, what="sshd to listen")
        yield f"{getpass.getuser()}@127.0.0.1:{port}", keys / "client"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return json.loads(response.read()).get("ok") is True
    except OSError:
        return False


@pytest.mark.slow
def test_fab_deploys_two_commits_over_ssh_and_rolls_back_a_broken_one(sshd):
    host, key = sshd
    user, _ = service_account()
    with world_readable_dir("oi-deploy-") as root:
        # The host: its own config file, data and state, which deploys must keep.
        port = free_port()
        data = make_package(root / "data")
        write_dump(
            data,
            "UQx-DEP-1T-auth_user-prod-analytics.sql",
            AUTH_USER_HEADER + b"1\tada\tada@example.org\t0\t1\tNULL\t2014-12-01 09:00:00\n",
        )
        host_config = root / "etc" / "optimus-ingestor" / "config.py"
        host_config.parent.mkdir(parents=True)
        host_config.write_text(f"DATA_PATHS = [{str(data)!r}]\nAPI_PORT = {port}\nSCAN_INTERVAL = 3600\n")
        remote = root / "opt" / "optimus-ingestor"
        state = root / "var" / "lib" / "optimus-ingestor"
        # The developer's checkout and the bare repository it pushes to (the "git URL").
        bare = root / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
        work = copy_code(root / "work")
        git(work, "init", "-q", "-b", "main")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "first")
        git(work, "remote", "add", "origin", str(bare))
        system_python = "/usr/bin/python3" if os.geteuid() == 0 else str(Path(sys.executable))
        (work / "config.py").write_text(
            f"FAB_HOSTS = [{host!r}]\nFAB_GITHUB_URL = {str(bare)!r}\nFAB_REMOTE_PATH = {str(remote)!r}\n"
            f"FAB_USER = {user!r}\nFAB_CONFIG = {str(host_config)!r}\nFAB_STATE_DIR = {str(state)!r}\n"
            f"FAB_PYTHON = {system_python!r}\nFAB_PIP_OPTIONS = '--no-index --find-links {wheelhouse()}'\n"
            f"FAB_SERVICE = 'init'\nFAB_INIT_DIR = {str(root / 'etc' / 'init.d')!r}\n"
            f"FAB_DEFAULTS_FILE = {str(root / 'etc' / 'default' / 'optimus-ingestor')!r}\n"
            f"FAB_HEALTH_URL = 'http://127.0.0.1:{port}/healthz'\nFAB_HEALTH_TIMEOUT = 30\n"
            f"FAB_CARGO_TARGET_DIR = {str(CACHE / 'cargo-target')!r}\n"
        )
        (work / ".git" / "info" / "exclude").write_text("config.py\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGESTOR_")}

        def fab(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(FAB), "-i", str(key), *args],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )

        init = root / "etc" / "init.d" / "optimus-ingestor"
        try:
            listed = fab("--list")
            assert listed.returncode == 0
            for name in ("prepare", "deploy", "rollback", "status"):
                assert name in listed.stdout
            assert "pushed commit" in listed.stdout

            # prepare refuses an unpushed, then an uncommitted tree; it never commits.
            refused = fab("prepare")
            assert refused.returncode == 1 and "not pushed" in refused.stderr
            git(work, "push", "-q", "origin", "main")
            (work / "README.md").write_text((work / "README.md").read_text() + "\nlocal edit\n")
            refused = fab("prepare")
            assert refused.returncode == 1 and "uncommitted" in refused.stderr
            git(work, "checkout", "--", "README.md")
            assert fab("prepare").returncode == 0

            first = fab("deploy")
            assert first.returncode == 0, first.stdout + first.stderr
            first_release = (remote / "current").resolve()
            assert git(first_release, "rev-parse", "HEAD") == git(work, "rev-parse", "HEAD")
            assert healthz(port) and (state / "sql").exists()
            # where this machine has cargo, the deploy built the compiled pass into the venv
            has_cargo = (
                shutil.which("cargo") is not None or (Path.home() / ".cargo" / "bin" / "cargo").exists()
            )
            imported = subprocess.run(
                [str(first_release / "venv" / "bin" / "python"), "-c", "import eventscan"]
            )
            assert (imported.returncode == 0) == has_cargo, first.stdout + first.stderr

            (work / "NEWS").write_text("second release\n")
            git(work, "add", "NEWS")
            git(work, "commit", "-q", "-m", "second")
            git(work, "push", "-q", "origin", "main")
            second = fab("deploy")
            assert second.returncode == 0, second.stdout + second.stderr
            second_release = (remote / "current").resolve()
            assert second_release != first_release and (second_release / "NEWS").exists()
            assert (second_release / "venv").resolve() == (first_release / "venv").resolve(), "venv reused"
            assert healthz(port)

            # A commit whose daemon cannot start: rolled back, the previous release still serving.
            (work / "ingestor.py").write_text("raise SystemExit('broken release')\n")
            git(work, "commit", "-q", "-am", "broken")
            git(work, "push", "-q", "origin", "main")
            broken = fab("deploy")
            assert broken.returncode == 1 and "rolled back" in broken.stderr, broken.stdout + broken.stderr
            assert (remote / "current").resolve() == second_release
            assert wait_for(lambda: healthz(port), timeout=30, what="the previous release serving /healthz")
            assert host_config.read_text().startswith("DATA_PATHS"), "the host's config is kept"

            # Pruning: releases beyond FAB_KEEP_RELEASES (but the current and the previous), and the
            # finished venvs no kept release links to; one still being made (no .complete) stays.
            in_use = (second_release / "venv").resolve()
            stale, building = remote / "venvs" / "0123456789abcdef", remote / "venvs" / "fedcba9876543210"
            for venv in (stale, building):
                venv.mkdir()
            (stale / ".complete").touch()
            git(work, "checkout", "-q", "HEAD~1", "--", "ingestor.py")
            (work / "NEWS").write_text("fourth release\n")
            git(work, "commit", "-q", "-am", "fourth")
            git(work, "push", "-q", "origin", "main")
            with (work / "config.py").open("a") as config:
                config.write("FAB_KEEP_RELEASES = 1\n")
            fourth = fab("deploy")
            assert fourth.returncode == 0, fourth.stdout + fourth.stderr
            kept = sorted(p.name for p in (remote / "releases").iterdir())
            assert kept == sorted([second_release.name, (remote / "current").resolve().name])
            assert not stale.exists() and building.exists() and in_use.exists()
            assert ((remote / "current") / "venv").resolve() == in_use
            assert healthz(port)
        finally:
            defaults_env = {
                **env,
                "OPTIMUS_INGESTOR_DEFAULTS": str(root / "etc" / "default" / "optimus-ingestor"),
            }
            if init.exists():
                subprocess.run([str(init), "stop"], env=defaults_env, capture_output=True, timeout=120)
