"""
Dialects stay above the service layer: they import the engine, the domain,
the service interfaces and each other, never the store or the wiring.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What a dialect may import of ours: a module counts if it is one of these
#: or inside one.
ALLOWED = (
    "gateway.coap",
    "gateway.domain",
    "gateway.dialect",
    "gateway.dialects",
    "gateway.service.interfaces",
    "plugins",
)


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from gateway.service import build" imports gateway.service.build.
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def forbidden(source: str) -> list[str]:
    """The first-party modules C{source} imports that a dialect must not."""
    ours = {m for m in _imported(ast.parse(source)) if m.split(".")[0] in ("gateway", "plugins")}
    return sorted(m for m in ours if not any(m == a or m.startswith(a + ".") for a in ALLOWED))


def _dialect_sources() -> list[Path]:
    paths = [ROOT / "gateway" / "dialect.py"]
    paths += (ROOT / "gateway" / "dialects").rglob("*.py")
    paths += (ROOT / "plugins").rglob("*.py")
    paths += (ROOT / "tests" / "dialects" / "toy_plugins").rglob("*.py")
    return sorted(paths)


def test_dialects_import_neither_store_nor_wiring() -> None:
    """No dialect module or plugin (the toy one too) imports the store, the wiring or the API."""
    offending = {
        str(path.relative_to(ROOT)): found
        for path in _dialect_sources()
        if (found := forbidden(path.read_text()))
    }
    assert len(_dialect_sources()) > 8
    assert offending == {}


def test_checker_catches_every_import_form() -> None:
    """Plain, from-module and from-package imports of forbidden modules are all caught."""
    source = (
        "import gateway.store.memory\n"
        "from gateway.service.build import Services\n"
        "from gateway.service import credentials\n"
        "from gateway.service.interfaces import IDeviceServices\n"
        "from gateway.coap import errors\n"
        "import json\n"
    )
    assert forbidden(source) == [
        "gateway.service.build.Services",
        "gateway.service.credentials",
        "gateway.store.memory",
    ]
