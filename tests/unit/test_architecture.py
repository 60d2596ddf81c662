"""Dependencies point one way: schemas <- deploy <- gateway, pipeline <- hitstream (the CLI).

The local stack (`deploy/local/`: a broker from Maven jars, chDB behind an HTTP server, `make
run`) is for development, tests and benches only: no runtime module may import it.
"""

from __future__ import annotations

import ast
import graphlib
import sys
from collections.abc import Iterable
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


def full_imports(path: Path) -> set[str]:
    """The modules an absolute import in `path` names (`from a import b` names `a` and `a.b`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


LOCAL_STACK = "deploy.local"
# `make demo` drives the running local stack (it reads the stack's state file).
LOCAL_STACK_TOOLS = {"results/demo.py"}
RUNTIME = sorted(
    path
    for path in MODULES
    if not path.relative_to(ROOT).is_relative_to("deploy/local")
    and str(path.relative_to(ROOT)) not in LOCAL_STACK_TOOLS
)


@pytest.mark.parametrize("path", RUNTIME, ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_code_does_not_import_the_local_stack(path: Path) -> None:
    local = {
        name
        for name in full_imports(path)
        if name == LOCAL_STACK or name.startswith(f"{LOCAL_STACK}.")
    }
    assert not local, f"{path.relative_to(ROOT)} imports the local stack: {sorted(local)}"


def test_the_local_stack_is_where_the_layer_test_looks() -> None:
    local = {module_name(path) for path in (ROOT / "deploy" / "local").glob("*.py")}
    assert {"deploy.local.kafka_local", "deploy.local.chdb_server", "deploy.local.stack"} <= local
    assert not any((ROOT / "deploy" / f"{name}.py").exists() for name in ("stack", "localstack"))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(packages: Iterable[Path], root: Path = ROOT) -> dict[str, set[str]]:
    """Each module under `packages` and the modules of those packages it imports by name (at the
    top or inside a function alike).

    `from a.b import c` is an edge to the module `a.b.c` when there is one, else to `a.b`; the
    implicit import of a module's parent package is not an edge (as import-linter counts)."""
    paths = {module_name(p, root): p for package in packages for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                named = [node.module] if node.module else []
                module = ".".join([*base, *named] if node.level else named)
                found.update(
                    f"{module}.{alias.name}" if f"{module}.{alias.name}" in paths else module
                    for alias in node.names
                )
        graph[name] = {target for target in found if target in paths and target != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (its modules, the first repeated at the end), or []."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as found:
        return list(found.args[1])
    return []


def test_the_project_has_no_import_cycle() -> None:
    graph = import_graph(ROOT / package for package in sorted(PROJECT))
    assert {"schemas.octeth.vocabulary", "pipeline.app", "deploy.local.stack"} <= set(graph)
    found = cycle(graph)
    assert not found, f"import cycle: {' -> '.join(found)}"


def test_an_import_cycle_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def late():\n    from ..c import x\n")
    (package / "c.py").write_text("import pkg.a\n")
    assert sorted(cycle(import_graph([package], tmp_path))[:-1]) == ["pkg.a", "pkg.c", "pkg.sub.b"]
    (package / "c.py").write_text("x = 1\n")
    assert cycle(import_graph([package], tmp_path)) == []


def test_the_octeth_vocabulary_imports_nothing_of_the_project() -> None:
    graph = import_graph([ROOT / "schemas"])
    assert graph["schemas.octeth.vocabulary"] == set()
