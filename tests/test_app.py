from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lfsd.bootstrap import SECRET_FILE, signing_key
from lfsd.config import Settings, SettingsError


def test_generated_key_is_private_stable_and_shared(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: signing_key(settings), range(16)))
    assert len(keys) == 1
    (key,) = keys
    assert len(key) >= 32
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [SECRET_FILE]


def test_configured_key_wins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k" * 40)
    assert signing_key(settings) == b"k" * 40
    assert not (tmp_path / SECRET_FILE).exists()


def test_short_configured_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        Settings(secret_key="short")
