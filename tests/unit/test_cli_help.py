"""`hitstream --help` and every command's and subcommand's help show examples that parse."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator

import pytest

from hitstream import cli
from hitstream.cli import build_parser


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the tree with its command path, the root first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, (*path, name))


def example_commands(help_text: str) -> list[list[str]]:
    """The `hitstream ...` invocations after the first `example(s):` heading, as argv lists."""
    heading = re.search(r"\bexamples?:", help_text, flags=re.I)
    if heading is None:
        return []
    text = re.sub(r"\\\n\s*", "", help_text[heading.end() :])  # shell line continuations
    found = []
    for line in text.splitlines():
        start = line.find("hitstream ")
        if start < 0 or "<" in line:
            continue
        command = line[start:]
        # shell arithmetic and command substitutions in arguments: any value will do
        command = re.sub(r"\$\(\(.*?\)\)(?=\s|$)", "0", command)
        command = re.sub(r"\$\([^()]*\)", "0", command)
        command = re.split(r"\)|\s\||\s>|&&|;|\s#|\s{2,}\(", command)[0]
        found.append(shlex.split(command)[1:])
    return found


TREE = list(commands(build_parser()))


def test_the_tree_has_every_command() -> None:
    names = {path[0] for path, _ in TREE if path}
    assert {"settings", "migrate", "topics", "experiments", "definitions", "octeth"} <= names
    assert {"results"} <= names
    top = build_parser().format_help()
    assert all(name in top for name in names), "hitstream --help must name every command"


@pytest.mark.parametrize(
    ("path", "parser"), TREE, ids=[" ".join(p) or "hitstream" for p, _ in TREE]
)
def test_help_has_examples_that_parse(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    help_text = parser.format_help()
    assert re.search(r"\bexamples?:", help_text, flags=re.I), f"no example in {path} --help"
    examples = example_commands(help_text)
    assert examples, f"no `hitstream ...` example line in {path} --help"
    for argv in examples:
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"example `hitstream {shlex.join(argv)}` does not parse ({exc.code})")


LEAVES = [
    (path, parser)
    for path, parser in TREE
    if path and not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
]


@pytest.mark.parametrize(("path", "parser"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_names_the_function_that_runs_it(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    """The leaf's parser or one above it sets `run` (a subparser keeps its parent's defaults)."""
    parsers = dict(TREE)
    chain = [parsers[path[:i]] for i in range(1, len(path) + 1)]
    assert any(callable(p.get_default("run")) for p in chain), f"`hitstream {' '.join(path)}`"


def test_settings_runs_without_reading_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hitstream settings` lists the variables even while one of them is wrong."""
    monkeypatch.setenv("HITS_PARTITIONS", "many")
    assert cli.main(["settings"]) == 0
    assert "HITS_PARTITIONS" in capsys.readouterr().out


def test_other_commands_read_the_settings_when_they_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong variable stops a command that needs the settings, before it does anything."""
    monkeypatch.setenv("HITS_PARTITIONS", "many")
    build_parser().parse_args(["topics"])  # parsing alone reads nothing
    with pytest.raises(Exception, match="HITS_PARTITIONS"):
        cli.main(["topics"])
