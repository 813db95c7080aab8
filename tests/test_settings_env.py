"""``Settings`` reads ``LFSD_*`` itself (no pydantic-settings): the rules that package applied still hold."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from pydantic import ValidationError

from lfsd.config import Settings


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
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert [error["loc"] for error in raised.value.errors()] == [("link_ttl",)]
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]
