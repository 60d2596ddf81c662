"""The operator guide and the integration guides name only what exists in the code.

Settings, gateway routes, metric names, `hitstream` commands (each must parse) and the README's
links to them are checked against the code; a renamed setting or route fails here. No tracked
file names a path outside the repository: the product must be readable on its own.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from gateway.app import create_app
from hitstream.cli import build_parser
from schemas.settings import FIELDS, Settings, env_name
from tests.unit.test_deploy_config import known_metric_names

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").rglob("*.md"))
ROUTE = re.compile(r"(?<![\w.:/-])/(?:api|monetate|admin|event|readyz|healthz|metrics)[\w./{}-]*")
GATEWAY_URL = re.compile(
    r"(?:\$GW|https?://(?:127\.0\.0\.1:8080|collector\.example\.com))(/[\w./-]*)"
)


def text_of(path: Path) -> str:
    return path.read_text()


def routes() -> set[str]:
    return {r.canonical for r in create_app(Settings()).router.resources()}


def test_every_guide_exists_and_is_linked_from_the_readme() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in DOCS}
    expected = {
        "docs/operator-guide.md",
        "docs/architecture.md",
        "docs/protocols.md",
        "docs/integrations/optimizely.md",
        "docs/integrations/monetate.md",
        "docs/integrations/octeth.md",
        "docs/integrations/direct-producers.md",
    }
    assert expected <= names
    readme = (ROOT / "README.md").read_text()
    for name in expected:
        assert f"]({name})" in readme, f"README does not link {name}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_settings_routes_and_metrics_exist(doc: Path) -> None:
    text = text_of(doc)
    settings = {env_name(f) for f in FIELDS}
    named = set(re.findall(r"\bHITS_[A-Z0-9_]*[A-Z0-9]\b", text))
    # `HITS_KAFKA_SSL_CERTFILE` and `_KEYFILE`: a suffix after a full name is fine
    assert named <= settings, f"not settings: {sorted(named - settings)}"
    known_routes = routes()
    paths = set(ROUTE.findall(text)) | set(GATEWAY_URL.findall(text))
    assert paths, f"{doc.name}: no gateway path found"
    for path in paths:
        path = path.split("?")[0].rstrip(".")
        prefix = path.endswith("/")  # `/admin/...`: a prefix of routes
        ok = any(
            r.startswith(path)
            if prefix
            else re.fullmatch(re.sub(r"\{\w+\}", r"[^/]+", r), path) is not None
            for r in known_routes
        )
        assert ok, f"{doc.name}: no gateway route {path}"
    known = known_metric_names()
    metrics = set(re.findall(r"\bhitstream_[a-z_]+(?:_total|_seconds|_records|_offset\w*)\b", text))
    unknown = {m for m in metrics if m not in known and m + "_count" not in known}  # histograms
    assert not unknown, f"{doc.name}: no such metric {sorted(unknown)}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_hitstream_commands_in_the_docs_parse(doc: Path) -> None:
    """Every `hitstream ...` in code (fenced blocks and inline spans) is a valid command line."""
    text = re.sub(r"\\\n\s*", "", text_of(doc))
    fenced = re.findall(r"```\w*\n(.*?)```", text, flags=re.S)
    code = [line for block in fenced for line in block.splitlines()]
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    code += [s for s in spans if not re.fullmatch(r"hitstream [a-z]+", s)]  # a bare mention
    commands = []
    for line in code:
        found = re.search(r"(?:^\s*(?:\w+=\S+\s+)*|\$\()hitstream ([a-z][^#)|;]*)", line)
        if found and "<" not in found.group(1) and "--help" not in found.group(1):
            commands.append(found.group(1).strip())
    in_blocks = any(
        re.match(r"\s*hitstream ", line) for block in fenced for line in block.splitlines()
    )
    assert commands or not in_blocks, "commands in code blocks but none found: extraction broken"
    for command in commands:
        argv = shlex.split(command)
        try:
            build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{doc.name}: `hitstream {command}` does not parse")


OUTSIDE = re.compile(
    "|".join(
        [
            r"(?<![\w.])/(?:work|home|root|Users)/",  # absolute paths of a machine
            r"PROTOCOLS\.md|FACTS\.md|STYLE\.md",  # notes that live outside the repo
            r"\bshared/|\bseeds/",
            r"\b[0-9]{3}_[0-9a-f]{16}\.txt\b",  # a vendor seed's file name
        ]
    )
)
RELATIVE = re.compile(r"(?:\.\./)+[\w.-]*")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    paths = [ROOT / name for name in listed.split("\0") if name]
    return [p for p in paths if p.is_file() and b"\0" not in p.read_bytes()[:8192]]


def outside_paths(text: str, where: Path) -> list[str]:
    """What `text` (the contents of the file `where`) names outside the repository: absolute
    paths, the notes and seeds that live beside it, and relative `../` paths that climb out."""
    found = [m.group(0) for m in OUTSIDE.finditer(text)]
    for match in RELATIVE.finditer(text):
        if not (where.parent / match.group(0)).resolve().is_relative_to(ROOT):
            found.append(match.group(0))
    return found


def test_no_tracked_file_names_a_path_outside_the_repository() -> None:
    files = tracked_text_files()
    assert ROOT / "docs" / "protocols.md" in files
    named = {
        str(p.relative_to(ROOT)): hits
        for p in files
        if p != Path(__file__).resolve()  # this file names them to test the recogniser
        and (hits := outside_paths(p.read_text(errors="replace"), p))
    }
    assert not named, f"paths outside the repository: {named}"


@pytest.mark.parametrize(
    ("text", "outside"),
    [
        ("the rules are in `/work/shared/PROTOCOLS.md`", True),
        ("see ../../shared/FACTS.md", True),
        ("see ../../../elsewhere/notes.md", True),
        ("from seed 001_a1ca78f5fe52d1d2.txt", True),
        ('new URL("../../gateway/static/monetate-tag.js", HERE)', False),
        ("[protocols.md](../protocols.md)", False),
        ("see docs/protocols.md and schemas/octeth/", False),
    ],
)
def test_outside_paths_are_recognised(text: str, outside: bool) -> None:
    where = ROOT / "docs" / "integrations" / "example.md"
    assert bool(outside_paths(text, where)) is outside
