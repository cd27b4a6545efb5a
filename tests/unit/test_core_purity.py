"""The pure core imports only the standard library and numpy (STYLE: no I/O, no clock, no network)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "trading" / "core"
ALLOWED_THIRD_PARTY = {"numpy"}
# Standard-library modules that would let the core do I/O or read the clock.
FORBIDDEN_STDLIB = {
    "asyncio",
    "datetime",
    "io",
    "logging",
    "os",
    "pathlib",
    "random",
    "socket",
    "sqlite3",
    "subprocess",
    "sys",
    "threading",
    "time",
    "urllib",
    "zoneinfo",
    "tomllib",
    "shutil",
    "tempfile",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0] if not node.module.startswith("trading.core") else "trading.core")
    return names


def test_core_modules_import_only_stdlib_numpy_and_core() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 8, "the core modules are where ARCHITECTURE puts them"
    problems = []
    for path in files:
        for name in _imports(path):
            if name in ("__future__", "trading.core") or name in ALLOWED_THIRD_PARTY:
                continue
            if name in FORBIDDEN_STDLIB:
                problems.append(f"{path.name} imports {name} (I/O or clock)")
            elif name not in sys.stdlib_module_names:
                problems.append(f"{path.name} imports third-party {name}")
    assert problems == []
