"""`facedb.models` imports one way (no cycle, no deferred imports) and nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import facedb.models

PACKAGE = Path(facedb.models.__file__).parent
# Each module may import only modules to its left (the order in facedb/models/__init__.py).
ORDER = [
    "errors",
    "families",
    "digests",
    "session",
    "registry_analysis",
    "registry",
    "store",
    "spec",
    "onnx_model",
    "optimize",
    "graphs",
]


def facedb_imports(path: Path) -> list[str]:
    """Every `facedb...` module imported anywhere in the file, function bodies included."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [name for name in names if name.split(".")[0] == "facedb"]


def test_every_module_is_in_the_order() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(ORDER)


def test_imports_go_one_way_and_stay_in_the_package() -> None:
    for position, module in enumerate(ORDER):
        allowed = {f"facedb.models.{name}" for name in ORDER[:position]}
        imported = set(facedb_imports(PACKAGE / f"{module}.py"))
        assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"
