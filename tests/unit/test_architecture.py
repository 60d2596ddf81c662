"""Dependencies point one way: schemas <- deploy <- gateway, pipeline <- hitstream (the CLI)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"schemas", "gateway", "pipeline", "deploy", "hitstream", "results"}
ALLOWED = {
    "schemas": {"schemas"},
    "deploy": {"schemas", "deploy"},
    "gateway": {"schemas", "deploy", "gateway"},
    "pipeline": {"schemas", "deploy", "pipeline"},
    "results": {"schemas", "deploy", "results"},
    "hitstream": PROJECT,
}
SCHEMAS_THIRD_PARTY = {"orjson"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


MODULES = sorted(p for package in PROJECT for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_only_what_its_layer_may(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    used = imports(path)
    assert used & PROJECT <= ALLOWED[package], f"{package} may not import {used & PROJECT}"
    if package == "schemas":
        third_party = used - PROJECT - set(sys.stdlib_module_names) - {"__future__"}
        assert third_party <= SCHEMAS_THIRD_PARTY, f"schemas imports {third_party}"
