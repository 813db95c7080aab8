"""How an ``LFSD_*`` string becomes a setting's value: the rules a deployment's environment relies on.

pydantic's lax mode applies them today; they are written down here so that whatever parses ``Settings`` (issue 17
weighs replacing pydantic: docs/performance.md, "Idle memory") keeps accepting and refusing the same strings. A
refused value raises a ``ValueError`` that names the setting.
"""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

import pytest

from lfsd.config import Settings

ACCEPTED: list[tuple[str, str, object]] = [
    # Booleans: these words in any case, and 1/0.
    *[("fsync", word, True) for word in ("true", "True", "TRUE", "1", "yes", "on", "y", "t")],
    *[("fsync", word, False) for word in ("false", "0", "no", "off", "n", "f")],
    # Integers: decimal, surrounding spaces, a sign, underscores, a zero fraction.
    *[("batch_max_objects", text, 1000) for text in ("1000", " 1000 ", "+1000", "1_000", "1000.0")],
    ("token_max_days", "3", 3),
    # Floats: decimal or exponent, integers too.
    ("drain_delay", "1.5", 1.5),
    ("drain_delay", "10", 10.0),
    ("drain_delay", " 1e1 ", 10.0),
    # Literals: exactly as documented.
    ("log_format", "json", "json"),
    ("log_level", "debug", "debug"),
    # Paths: as written, not resolved.
    ("data_dir", "relative/dir", Path("relative/dir")),
    ("git_root", "/srv/git", Path("/srv/git")),
    # Strings: as written; an empty one is an empty string, not "unset".
    ("database_url", "", ""),
    ("public_url", "https://lfs.example/", "https://lfs.example"),
    # Networks: spaces or commas between them, a bare address is a /32 or /128, none at all is empty.
    ("trusted_proxies", "10.0.0.0/8, ::1/128", (ip_network("10.0.0.0/8"), ip_network("::1/128"))),
    ("trusted_proxies", "192.0.2.7", (ip_network("192.0.2.7/32"),)),
    ("trusted_proxies", " ", ()),
]

REFUSED: list[tuple[str, str]] = [
    *[("fsync", word) for word in ("2", "", " true", "maybe")],
    *[("batch_max_objects", text) for text in ("10.5", "1e3", "0x10", "abc", "", "0")],  # "0": below its minimum
    ("token_max_days", ""),  # an optional number cannot be emptied from the environment
    ("drain_delay", "abc"),
    ("drain_delay", "-1"),
    ("drain_delay", "nan"),
    ("drain_delay", "inf"),  # a drain that never ends
    ("batch_max_objects", "9" * 5000),  # past Python's limit on digits in a string: still this setting's error
    ("log_format", "JSON"),
    ("trusted_proxies", "10.0.0.1/8"),  # host bits set
    ("ssh_user", "Git"),
    ("listen", "8080"),
]


@pytest.mark.parametrize(("name", "text", "expected"), ACCEPTED)
def test_an_environment_string_converts(
    monkeypatch: pytest.MonkeyPatch, name: str, text: str, expected: object
) -> None:
    monkeypatch.setenv(f"LFSD_{name.upper()}", text)
    assert getattr(Settings(), name) == expected


@pytest.mark.parametrize(("name", "text"), REFUSED)
def test_an_environment_string_is_refused_naming_its_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, text: str
) -> None:
    monkeypatch.setenv(f"LFSD_{name.upper()}", text)
    with pytest.raises(ValueError, match=rf"(?m)^{name}\b"):
        Settings()


def test_the_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LFSD_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("LFSD_DATABASE_PASSWORD", "hunter2-hunter2")
    settings = Settings()
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == "s" * 40
    assert "s" * 40 not in repr(settings)
    assert "hunter2" not in repr(settings)
