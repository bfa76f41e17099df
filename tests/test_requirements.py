"""requirements.txt declares exactly the third-party packages the daemon's code imports."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions

from tests.conftest import REPO

NOT_RUNTIME = {"tests", "bench", "scripts", "examples", ".git"}


def _runtime_imports() -> set[str]:
    local = {p.name for p in REPO.iterdir() if p.is_dir()} | {p.stem for p in REPO.glob("*.py")}
    local |= {p.name for p in (REPO / "native").iterdir() if p.is_dir()}  # ours, built by setup.sh
    found = set()
    for path in REPO.rglob("*.py"):
        parts = path.relative_to(REPO).parts
        if parts[0] in NOT_RUNTIME or path.name == "fabfile.py" or "venv" in parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                    found.add(top)
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_txt_declares_every_third_party_import_of_the_daemon_and_nothing_else():
    declared = {
        _normal(re.split(r"[<>=!~ \[;]", line, maxsplit=1)[0])
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    providers = packages_distributions()
    needed = {_normal(providers[module][0]) for module in _runtime_imports()}
    assert needed - declared == set(), "imported but not declared"
    assert declared - needed == set(), "declared but not imported"
