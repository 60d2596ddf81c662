"""The README's settings table is `hitstream settings --markdown`, exactly."""

from __future__ import annotations

from pathlib import Path

from hitstream.cli import settings_table

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| variable | default | meaning |"
REGENERATE = (
    "the README settings table is out of date: regenerate it with "
    "`.venv/bin/python -m hitstream.cli settings --markdown` and paste the output over the "
    "table under '## Settings' in README.md"
)


def readme_settings_table() -> str:
    lines = README.read_text().splitlines()
    start = lines.index(HEADER)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end])


def test_readme_settings_table_is_generated() -> None:
    assert readme_settings_table() == settings_table(markdown=True), REGENERATE
