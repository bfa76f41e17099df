"""Decryption with the `gpg` command (Debian's gnupg), streamed, with its status lines parsed.

The ciphertext is written to gpg's standard input in blocks and gpg writes the plaintext to a
file, so a member of any size never sits in memory. `--status-file` gives machine-readable
outcomes (DECRYPTION_OKAY, NO_SECKEY, BADMDC, ...): a member counts as decrypted only when gpg
exits 0 and said DECRYPTION_OKAY, so a wrong key, a corrupt or tampered packet and a file that is
not encrypted are all failures with a reason. The passphrase, if any, is read by gpg from
GNUPG_PASSPHRASE_FILE (loopback pinentry); it never passes through this process. A watchdog stops
gpg as soon as its output grows past the member's limit (a decompression bomb, or the space left).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from core.errors import Interrupted

BLOCK = 1 << 20


class DecryptError(Exception):
    """The member could not be decrypted; the message is the reason."""


class OutputLimit(DecryptError):
    """The plaintext grew past its limit: gpg was stopped."""


def _reason(status: list[str], log: str, rc: int) -> str:
    """A user's sentence for gpg's failure, from its status lines (and log as a last resort)."""
    words = {line.split()[1]: line for line in status if len(line.split()) > 1}
    if "NO_SECKEY" in words:
        keys = sorted({ln.split()[2] for ln in status if ln.split()[1:2] == ["NO_SECKEY"]})
        return f"wrong key: encrypted to {', '.join(keys)}, and no such secret key is in GNUPG_HOME"
    errors = [ln.split()[2:4] for ln in status if ln.split()[1:2] == ["ERROR"] and len(ln.split()) > 3]
    bad_passphrase = any(
        where == "pkdecrypt_failed" and code.isdigit() and int(code) & 0xFFFF == 11 for where, code in errors
    )
    if bad_passphrase or "BAD_PASSPHRASE" in words:
        return "the passphrase in GNUPG_PASSPHRASE_FILE is wrong"
    if "MISSING_PASSPHRASE" in words or ("NEED_PASSPHRASE" in words and "BEGIN_DECRYPTION" not in words):
        return "the secret key needs a passphrase: set GNUPG_PASSPHRASE_FILE"
    if "BADMDC" in words or "DECRYPTION_FAILED" in words:
        return "corrupt or tampered packet: the decryption or its integrity check failed"
    if "BEGIN_DECRYPTION" in words and "DECRYPTION_OKAY" not in words:
        # Decryption began but did not end well: a damaged packet inside (e.g. its compressed data).
        last = [line for line in log.splitlines() if line.strip()][-1:]
        return f"corrupt packet: decryption did not complete ({' / '.join(last) or f'exit {rc}'})"
    if "NODATA" in words:
        return "not OpenPGP data (corrupt, or not encrypted)"
    if "BADSIG" in words or "ERRSIG" in words:
        return "bad signature"
    if rc == 0 and "DECRYPTION_OKAY" not in words:
        return "not encrypted (OpenPGP data without an encrypted packet)"
    last = [line for line in log.splitlines() if line.strip()][-2:]
    return f"gpg failed (exit {rc}): {' / '.join(last) or 'no message'}"


class GnuPG:
    """Runs `gpg --decrypt` with the configured home directory and passphrase file."""

    def __init__(self, home: str = "", passphrase_file: str = "", binary: str = "gpg") -> None:
        self.home = home
        self.passphrase_file = passphrase_file
        self.binary = binary

    def command(self, out: Path, status: Path, log: Path) -> list[str]:
        cmd = [self.binary, "--batch", "--no-tty", "--yes", "--pinentry-mode", "loopback"]
        if self.home:
            cmd += ["--homedir", self.home]
        if self.passphrase_file:
            cmd += ["--passphrase-file", self.passphrase_file]
        return [
            *cmd,
            "--status-file",
            str(status),
            "--logger-file",
            str(log),
            "--output",
            str(out),
            "--decrypt",
        ]

    def decrypt(
        self,
        source: IO[bytes],
        out: Path,
        limit: int,
        too_big: Callable[[int], str],
        *,
        progress: Callable[[int], None] = lambda n: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Decrypt `source` into `out`; the number of bytes written. DecryptError on failure (then
        `out` is removed); Interrupted if `should_stop()` turned true; OSError (reading) passes."""
        fd, status_name = tempfile.mkstemp(dir=out.parent, prefix=".gpg-status-")
        os.close(fd)
        status_path, log_path = Path(status_name), Path(status_name + ".log")
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        proc = subprocess.Popen(
            self.command(out, status_path, log_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        stopped: list[str] = []
        finished = threading.Event()

        def watchdog() -> None:
            while not finished.wait(0.05):
                size = _size(out)
                if size > limit:
                    stopped.append(too_big(size))
                    proc.kill()
                    return

        watcher = threading.Thread(target=watchdog, name="gpg-watchdog", daemon=True)
        watcher.start()
        ok = False
        try:
            assert proc.stdin is not None
            try:
                while block := source.read(BLOCK):
                    if should_stop():
                        raise Interrupted("stop requested while decrypting")
                    proc.stdin.write(block)
                    progress(len(block))
                proc.stdin.close()
            except BrokenPipeError:
                pass  # gpg stopped reading: its status says why
            rc = proc.wait()
            finished.set()
            watcher.join()
            if stopped:
                raise OutputLimit(stopped[0])
            status = _read_lines(status_path)
            if rc != 0 or not any(line.split()[1:2] == ["DECRYPTION_OKAY"] for line in status):
                raise DecryptError(_reason(status, _read_text(log_path), rc))
            if not out.exists():
                raise DecryptError("gpg wrote no output")
            ok = True
            return _size(out)
        finally:
            finished.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
            status_path.unlink(missing_ok=True)
            log_path.unlink(missing_ok=True)
            if not ok:
                out.unlink(missing_ok=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")
    except OSError:
        return ""


def _read_lines(path: Path) -> list[str]:
    return [line for line in _read_text(path).splitlines() if line.startswith("[GNUPG:] ")]
