"""Finds the services in `services/<name>/service.py` and orders them by their dependencies."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from pathlib import Path

from base_service import Service
from core.errors import ConfigError

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def discover() -> dict[str, type[Service]]:
    """Every Service subclass defined in a `services/*/service.py`, by its name."""
    found: dict[str, type[Service]] = {}
    for path in sorted(SERVICES_DIR.glob("*/service.py")):
        module = importlib.import_module(f"services.{path.parent.name}.service")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, Service)
                and cls is not Service
                and cls.name
                and cls.__module__ == module.__name__
            ):
                found[cls.name] = cls
    return found


def select(
    available: dict[str, type[Service]], wanted: Sequence[str], ignored: Sequence[str]
) -> list[Service]:
    """Instantiate the configured services in dependency order; unknown names are errors."""
    problems = [f"SERVICES: unknown service {n!r}" for n in wanted if n not in available]
    problems += [f"IGNORE_SERVICES: unknown service {n!r}" for n in ignored if n not in available]
    names = [n for n in (wanted or sorted(available)) if n in available and n not in ignored]
    chosen = {n: available[n] for n in names}
    for name, cls in chosen.items():
        for dep in cls.depends_on:
            if dep not in available:
                problems.append(f"service {name}: depends on unknown service {dep!r}")
    if problems:
        raise ConfigError(problems)
    return [chosen[n]() for n in dependency_order(chosen)]


def dependency_order(services: dict[str, type[Service]]) -> list[str]:
    """Names sorted so that each comes after what it depends on (dependencies not chosen are skipped)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order or name not in services:
            return
        if name in visiting:
            raise ConfigError([f"dependency loop: {' -> '.join((*path, name))}"])
        visiting.add(name)
        for dep in services[name].depends_on:
            visit(dep, (*path, name))
        visiting.discard(name)
        order.append(name)

    for name in sorted(services, key=lambda n: (not services[n].first, n)):
        visit(name, ())
    return order
