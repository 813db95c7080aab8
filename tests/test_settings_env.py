"""``Settings`` reads ``LFSD_*`` itself (no pydantic-settings): the rules that package applied still hold."""

from __future__ import annotations

import dataclasses
import types
from ipaddress import ip_network
from typing import get_args, get_type_hints

import pytest

from lfsd import cli
from lfsd.config import Settings, SettingsArgs, SettingsError


def test_environment_in_any_case_and_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LFSD_LISTEN", "0.0.0.0:9000")
    monkeypatch.setenv("lfsd_fsync", "false")
    monkeypatch.setenv("LFSD_WORKERS", "auto")
    monkeypatch.setenv("LFSD_NOT_A_SETTING", "ignored, as pydantic-settings ignored it")
    settings = Settings()
    assert (settings.listen, settings.fsync, settings.workers >= 1) == ("0.0.0.0:9000", False, True)
    assert Settings(listen="127.0.0.1:1").listen == "127.0.0.1:1"


def test_strings_convert_and_split_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LFSD_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.0.0/16")
    monkeypatch.setenv("LFSD_DRAIN_DELAY", "1e1")
    monkeypatch.setenv("LFSD_UI", "off")
    settings = Settings()
    assert settings.trusted_proxies == (ip_network("10.0.0.0/8"), ip_network("192.168.0.0/16"))
    assert (settings.drain_delay, settings.ui) == (10.0, False)


def test_a_bad_value_names_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LFSD_LINK_TTL", "abc")
    with pytest.raises(SettingsError) as raised:
        Settings()
    assert [name for name, _ in raised.value.problems] == ["link_ttl"]
    assert str(raised.value) == "link_ttl: Input should be a valid integer"
    monkeypatch.delenv("LFSD_LINK_TTL")
    with pytest.raises(SettingsError, match=r"^no_such_setting: not a setting$"):
        Settings(no_such_setting=1)  # type: ignore[call-arg]  # mypy refuses it too; the check is for untyped callers


def test_every_problem_is_reported_one_line_each_in_declaration_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LFSD_LINK_TTL", "abc")
    monkeypatch.setenv("LFSD_DRAIN_DELAY", "inf")  # accepted by accident before: a drain that never ends
    with pytest.raises(SettingsError) as raised:
        Settings(shutdown_grace="nan", buffer_size=3 * 65536)
    assert str(raised.value).splitlines() == [
        "shutdown_grace: Input should be a finite number",
        "link_ttl: Input should be a valid integer",
        "buffer_size: buffer_size must be a power of two",
        "drain_delay: Input should be a finite number",
    ]
    assert raised.value.first == "invalid setting shutdown_grace: Input should be a finite number"


def test_gc_grace_must_cover_link_ttl() -> None:
    with pytest.raises(SettingsError, match=r"^gc_grace: gc_grace \(60\) must be at least link_ttl \(600\)$"):
        Settings(gc_grace=60, link_ttl=600)
    assert Settings(gc_grace=600, link_ttl=600).gc_grace == 600


def test_replace_converts_and_checks_as_the_constructor_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LFSD_FSYNC", "false")
    settings = Settings(secret_key="k" * 40)
    changed = settings.replace(link_standing_ttl="0", public_url="https://example.test/")
    assert (changed.link_standing_ttl, changed.public_url, changed.fsync) == (0.0, "https://example.test", False)
    assert changed.secret_key == settings.secret_key and settings.link_standing_ttl == 5.0
    with pytest.raises(SettingsError, match=r"^s3_parts_in_flight: "):
        settings.replace(s3_parts_in_flight=65)


def test_the_typed_arguments_are_every_setting_as_its_type_or_as_text() -> None:
    hints = get_type_hints(Settings)
    expected = {field.name: hints[field.name] | str for field in dataclasses.fields(Settings)}
    assert get_type_hints(SettingsArgs) == expected


def test_the_command_line_options_are_settings_of_their_types() -> None:
    """``cli._settings`` hands its options to ``Settings.parse``, which mypy cannot check: this does."""
    accepted = get_type_hints(SettingsArgs)
    for name, hint in get_type_hints(cli._Options).items():
        given = set(get_args(hint)) - {types.NoneType}
        assert given <= (set(get_args(accepted[name])) or {accepted[name]}), name


def test_parse_checks_names_and_values_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LFSD_FSYNC", "false")
    parsed = Settings.parse({"link_ttl": "60", "gc_grace": 60})
    assert (parsed.link_ttl, parsed.gc_grace, parsed.fsync) == (60, 60, False)
    with pytest.raises(SettingsError, match=r"^no_such_setting: not a setting\nlink_ttl: "):
        Settings.parse({"no_such_setting": 1, "link_ttl": "abc"})
