"""
Imports point down the data flow: each layer imports only itself and what
lies beneath it, checked on the source so it stays true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_DIALECT = (
    "gateway.coap",
    "gateway.domain",
    "gateway.dialect",
    "gateway.dialects",
    "gateway.protobuf",
    "gateway.service.interfaces",
    "plugins",
)

#: Layer (a package or module of ours) -> what it may import of ours.
RULES: dict[str, tuple[str, ...]] = {
    "gateway.domain": ("gateway.domain",),
    "gateway.coap": ("gateway.coap",),
    # The schema compiler: the protobuf runtime and nothing else of ours.
    "gateway.protobuf": ("gateway.protobuf",),
    # The transport below the engine: it hands the engine peers, nothing else.
    "gateway.dtls": ("gateway.dtls", "gateway.coap.peer", "gateway.coap.params"),
    "gateway.store": ("gateway.store", "gateway.domain"),
    "gateway.service": (
        "gateway.service",
        "gateway.store",
        "gateway.domain",
        "gateway.protobuf",
        "gateway.upstream.events",
    ),
    "gateway.upstream": ("gateway.upstream", "gateway.store", "gateway.domain"),
    "gateway.api": ("gateway.api", "gateway.service", "gateway.domain"),
    "gateway.dialect": _DIALECT,
    "gateway.dialects": _DIALECT,
    "plugins": _DIALECT,
    "tests.dialects.toy_plugins": _DIALECT,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(source: str, module: str, is_package: bool = False) -> set[str]:
    """The modules (or module attributes) C{source}, the text of C{module}, imports."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # "from gateway.service import build" imports gateway.service.build.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def forbidden(source: str, module: str, is_package: bool = False) -> list[str]:
    """What C{module} imports of ours that its layer's rule does not allow."""
    layer = max((layer for layer in RULES if _within(module, (layer,))), key=len)
    ours = {
        name
        for name in imported(source, module, is_package)
        # The bare top package holds only metadata (the version).
        if name.split(".")[0] in ("gateway", "plugins") and name != "gateway"
    }
    return sorted(name for name in ours if not _within(name, RULES[layer]))


def _sources() -> list[tuple[Path, str]]:
    found = []
    for path in sorted([*ROOT.glob("gateway/**/*.py"), *ROOT.glob("plugins/**/*.py"),
                        *ROOT.glob("tests/dialects/toy_plugins/*.py")]):
        module = _module_name(path)
        if any(_within(module, (layer,)) for layer in RULES):
            found.append((path, module))
    return found


def test_every_layer_imports_only_downwards() -> None:
    """No module imports a layer above its own (store above service, dialects above the store)."""
    sources = _sources()
    offending = {
        module: bad
        for path, module in sources
        if (bad := forbidden(path.read_text(), module, path.name == "__init__.py"))
    }
    assert len(sources) > 60
    assert offending == {}


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("gateway.store.memory", "from gateway.service.registry import DeviceRegistry\n",
         ["gateway.service.registry.DeviceRegistry"]),
        ("gateway.store.sqlite.store", "from ...service import build\n",
         ["gateway.service.build"]),
        ("gateway.coap.layer", "from ..domain.model import Device\nfrom . import codec\n",
         ["gateway.domain.model.Device"]),
        ("gateway.domain.model", "import gateway.store\n", ["gateway.store"]),
        ("gateway.dialects.thingsboard.resources",
         "from gateway.service.build import Services\nfrom gateway.service import credentials\n"
         "from gateway.service.interfaces import IDeviceServices\nimport json\n",
         ["gateway.service.build.Services", "gateway.service.credentials"]),
        ("plugins.toy", "import gateway.store.memory\n", ["gateway.store.memory"]),
        ("gateway.dtls.transport",
         "from gateway.coap.peer import IPeer\nfrom gateway.service.credentials import X\n"
         "from ..dialects import toolkit\n",
         ["gateway.dialects.toolkit", "gateway.service.credentials.X"]),
    ],
)
def test_checker_catches_every_import_form(module: str, source: str, expected: list[str]) -> None:
    """Plain, from-module, from-package and relative imports across a layer are all caught."""
    assert forbidden(source, module) == expected
