"""Every setting is documented; the README opens with the two commands."""

from __future__ import annotations

from pathlib import Path

from lfsd.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    descriptions = Settings.descriptions()
    assert len(descriptions) > 70
    for name, description in descriptions.items():
        assert description.strip(), name
        assert f"`{name}`" in text, name
        assert f"`LFSD_{name.upper()}`" in text, name


def test_readme_opens_with_serve_and_test() -> None:
    head = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    assert "make serve" in head and "make test" in head


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
