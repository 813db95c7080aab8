"""External identities' configuration: what ``resources.open_external`` refuses at start, with a message that says
which setting is wrong; and that only asymmetric algorithms can ever be configured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Unpack

import pytest

from lfsd.config import Settings, SettingsArgs
from lfsd.core.external import InvalidRules
from lfsd.oidc.verifier import InvalidKeys, parse_algorithms
from lfsd.resources import open_external
from tests.jwt_support import AUDIENCE, ISSUER, RULES, SigningKey, write_jwks


class NoUsers:
    async def find(self, name: str) -> None:
        return None


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.ec()


def _settings(tmp_path: Path, key: SigningKey, **overrides: Unpack[SettingsArgs]) -> Settings:
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(key.public_pem())
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    given: SettingsArgs = {
        "data_dir": tmp_path / "data",
        "oidc_issuer": ISSUER,
        "oidc_audience": AUDIENCE,
        "oidc_public_key": pem,
        "oidc_rules": rules,
        **overrides,
    }
    return Settings(**given)


def test_nothing_configured_means_no_external_identities(tmp_path: Path) -> None:
    assert open_external(Settings(data_dir=tmp_path), NoUsers()) is None


def test_a_complete_configuration_opens(tmp_path: Path, key: SigningKey) -> None:
    assert open_external(_settings(tmp_path, key), NoUsers()) is not None
    jwks = write_jwks(tmp_path / "jwks.json", key)
    assert open_external(_settings(tmp_path, key, oidc_public_key=None, oidc_jwks_file=jwks), NoUsers()) is not None
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rule": [{"repository": "a/b", "permission": "read", "user": "ci"}]}))
    assert open_external(_settings(tmp_path, key, oidc_rules=rules), NoUsers()) is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"oidc_audience": None}, "oidc_audience is required"),
        ({"oidc_public_key": None}, "exactly one of oidc_public_key and oidc_jwks_file"),
        ({"oidc_jwks_file": Path("jwks.json")}, "exactly one of oidc_public_key and oidc_jwks_file"),
        ({"oidc_rules": None}, "oidc_rules is required"),
        ({"oidc_algorithms": "RS256,HS256"}, "HS256 not allowed"),
        ({"oidc_algorithms": "none"}, "none not allowed"),
        ({"oidc_algorithms": " "}, "none given"),
    ],
)
def test_half_made_configurations_are_refused(
    tmp_path: Path, key: SigningKey, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        open_external(_settings(tmp_path, key, **overrides), NoUsers())


def test_bad_key_and_rules_files_are_refused(tmp_path: Path, key: SigningKey) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key")
    with pytest.raises(InvalidKeys, match="not a PEM public key"):
        open_external(_settings(tmp_path, key, oidc_public_key=garbage), NoUsers())
    with pytest.raises(InvalidKeys, match="cannot read"):
        open_external(_settings(tmp_path, key, oidc_public_key=tmp_path / "missing.pem"), NoUsers())
    symmetric = tmp_path / "oct.json"
    symmetric.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}))
    with pytest.raises(InvalidKeys, match="no signing keys"):
        open_external(_settings(tmp_path, key, oidc_public_key=None, oidc_jwks_file=symmetric), NoUsers())
    with pytest.raises(InvalidKeys, match="not JSON"):
        open_external(_settings(tmp_path, key, oidc_public_key=None, oidc_jwks_file=garbage), NoUsers())
    with pytest.raises(InvalidRules, match="is not valid"):
        open_external(_settings(tmp_path, key, oidc_rules=garbage), NoUsers())


def test_only_asymmetric_algorithms_can_be_configured() -> None:
    assert parse_algorithms("RS256, ES256 EdDSA") == {"RS256", "ES256", "EdDSA"}
    for name in ("HS256", "HS384", "HS512", "none", "rs256"):
        with pytest.raises(InvalidKeys):
            parse_algorithms(name)
