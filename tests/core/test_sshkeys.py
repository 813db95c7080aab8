"""SSH public keys, SSH commands and git-lfs-authenticate's credential: pure rules, checked against OpenSSH's own
ssh-keygen where it decides (fingerprints, key types)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from lfsd.core.auth import Identity, Permission, Repo, effective_permission
from lfsd.core.errors import Unauthorized
from lfsd.core.git import GitService
from lfsd.core.operation import Operation
from lfsd.core.repo import RepoPath
from lfsd.core.ssh_auth import SshAuthSigner
from lfsd.core.ssh_command import GitCommand, LfsCommand, LfsProgram, RefusedCommand, parse_ssh_command
from lfsd.core.sshkeys import (
    InvalidPublicKey,
    fingerprint_digest,
    fingerprint_of_digest,
    parse_offered_key,
    parse_public_key,
)

KEYGEN = shutil.which("ssh-keygen")
needs_keygen = pytest.mark.skipif(KEYGEN is None, reason="ssh-keygen (openssh-client) is not installed")


def _keygen(tmp_path: Path, kind: str, bits: int | None = None) -> tuple[str, str]:
    """A new public key line and ssh-keygen's SHA256 fingerprint of it."""
    assert KEYGEN is not None
    path = tmp_path / f"key-{kind}-{bits}"
    args = [KEYGEN, "-q", "-t", kind, "-N", "", "-C", "me@laptop", "-f", str(path)]
    subprocess.run([*args, *(["-b", str(bits)] if bits else [])], check=True)
    listed = subprocess.run([KEYGEN, "-l", "-E", "sha256", "-f", f"{path}.pub"], check=True, capture_output=True)
    return Path(f"{path}.pub").read_text(), listed.stdout.decode().split()[1]


@needs_keygen
@pytest.mark.parametrize(
    ("kind", "bits", "key_type"),
    [
        ("ed25519", None, "ssh-ed25519"),
        ("ecdsa", 256, "ecdsa-sha2-nistp256"),
        ("ecdsa", 384, "ecdsa-sha2-nistp384"),
        ("ecdsa", 521, "ecdsa-sha2-nistp521"),
        ("rsa", 2048, "ssh-rsa"),
        ("rsa", 4096, "ssh-rsa"),
    ],
)
def test_accepted_keys_and_their_fingerprints_match_ssh_keygen(
    tmp_path: Path, kind: str, bits: int | None, key_type: str
) -> None:
    line, expected = _keygen(tmp_path, kind, bits)
    key = parse_public_key(line)
    assert (key.key_type, key.fingerprint, key.comment) == (key_type, expected, "me@laptop")
    assert fingerprint_of_digest(fingerprint_digest(key.blob)) == expected
    assert parse_offered_key(key.key_type, key.base64) == parse_public_key(key.openssh)


@needs_keygen
def test_short_rsa_keys_are_refused_with_the_reason(tmp_path: Path) -> None:
    line, _ = _keygen(tmp_path, "rsa", 1024)
    with pytest.raises(InvalidPublicKey, match="at least 2048 bits"):
        parse_public_key(line)


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _line(key_type: str, *fields: bytes) -> str:
    return f"{key_type} {base64.b64encode(b''.join(_string(f) for f in fields)).decode()}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no SSH public key"),
        (_line("ssh-dss", b"ssh-dss", b"p", b"q", b"g", b"y"), "DSA keys are refused"),
        ("ssh-ed25519", "missing"),
        ("ssh-ed25519 !!!notbase64", "not base64"),
        ("ssh-foo AAAA", "unsupported SSH key type"),
        ('command="sh" ssh-ed25519 AAAA', "unsupported SSH key type"),
        (_line("ssh-ed25519", b"ssh-ed25519", b"x" * 31), "32 bytes"),
        (_line("ssh-ed25519", b"ssh-rsa", b"x" * 32), "not ssh-ed25519"),
        (_line("ssh-ed25519", b"ssh-ed25519", b"x" * 32) + "AAAA", "after the key data"),
        (_line("ssh-ed25519", b"ssh-ed25519"), "truncated"),
        (_line("ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"x" * 64), "curve"),
        (_line("ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp256", b"nistp256", b"\x02" + b"x" * 32), "uncompressed"),
        (_line("ssh-rsa", b"ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xff" * 128), "at least 2048 bits"),
        (_line("ssh-rsa", b"ssh-rsa", b"\x02", b"\x00" + b"\xff" * 256), "exponent"),
        ("ssh-ed25519 AAAA\nssh-ed25519 AAAA", "several lines"),
        ("ssh-ed25519 AAAA\x1b[2J", "control characters"),
    ],
)
def test_bad_keys_are_refused_with_a_clear_message(text: str, reason: str) -> None:
    with pytest.raises(InvalidPublicKey, match=reason):
        parse_public_key(text)
    assert parse_offered_key(*(text.split(" ", 1) if " " in text else (text, ""))) is None


def test_a_good_rsa_key_built_by_hand_is_accepted() -> None:
    line = _line("ssh-rsa", b"ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xff" * 256)
    assert parse_public_key(line + "  my key ").comment == "my key"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "git-lfs-authenticate acme/game download",
            LfsCommand(LfsProgram.AUTHENTICATE, RepoPath("acme/game"), Operation.DOWNLOAD),
        ),
        (
            "git-lfs-authenticate '/acme/game.git' upload",
            LfsCommand(LfsProgram.AUTHENTICATE, RepoPath("acme/game"), Operation.UPLOAD),
        ),
        (
            'git-lfs-transfer "acme/game.git" download',
            LfsCommand(LfsProgram.TRANSFER, RepoPath("acme/game"), Operation.DOWNLOAD),
        ),
        ("git-upload-pack '/acme/game.git'", GitCommand(GitService.UPLOAD_PACK, RepoPath("acme/game"))),
        ("git-receive-pack 'group/sub/game.git'", GitCommand(GitService.RECEIVE_PACK, RepoPath("group/sub/game"))),
    ],
)
def test_the_commands_served(text: str, expected: object) -> None:
    assert parse_ssh_command(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "interactive logins are not allowed"),
        ("   ", "interactive logins are not allowed"),
        ("sh -c id", "'sh' is not served"),
        ("git-upload-archive 'acme/game.git'", "is not served"),
        ("git-lfs-authenticate acme/game", "usage"),
        ("git-lfs-authenticate acme/game download extra", "usage"),
        ("git-lfs-authenticate acme/game verify", "download or upload"),
        ("git-lfs-authenticate ../etc/passwd download", "not a repository path"),
        ("git-upload-pack 'acme/game.git", "quotes do not match"),
        ("git-upload-pack acme/game.git; id", "usage"),
        ("git-upload-pack 'acme/game.git;id'", "not a repository path"),
        ("git-upload-pack a b", "usage"),
        ("git-upload-pack 'acme/game\n'", "control characters"),
        ("git-upload-pack " + "a" * 5000, "too long"),
    ],
)
def test_anything_else_is_refused_in_one_line(text: str | None, reason: str) -> None:
    with pytest.raises(RefusedCommand, match=reason) as caught:
        parse_ssh_command(text)
    assert "\n" not in caught.value.message


KEY = b"s" * 32
NOW = 1_700_000_000
REPO = RepoPath("acme/game")


def test_the_authenticate_credential_round_trips_and_is_bound() -> None:
    signer = SshAuthSigner(KEY, 900)
    token = signer.issue(7, REPO, Operation.UPLOAD, NOW)
    grant = signer.verify(token, NOW + 899)
    assert (grant.key_id, grant.repo, grant.operation, grant.ceiling) == (7, REPO, Operation.UPLOAD, Permission.WRITE)
    assert signer.verify(signer.issue(7, REPO, Operation.DOWNLOAD, NOW), NOW).ceiling is Permission.READ
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(token, NOW + 900)
    with pytest.raises(Unauthorized):
        SshAuthSigner(b"t" * 32, 900).verify(token, NOW)
    prefix, key_id, operation, expiry, repo, mac = token.split(".")
    other_repo = base64.urlsafe_b64encode(b"acme/other").rstrip(b"=").decode()
    for forged in (
        f"{prefix}.8.{operation}.{expiry}.{repo}.{mac}",
        f"{prefix}.{key_id}.download.{expiry}.{repo}.{mac}" if operation == "upload" else "x",
        f"{prefix}.{key_id}.{operation}.{int(expiry) + 1000}.{repo}.{mac}",
        f"{prefix}.{key_id}.{operation}.{expiry}.{other_repo}.{mac}",
        f"{prefix}.{key_id}.{operation}.{expiry}.!!.{mac}",
        token + ".x",
        "lfsd_" + token,
    ):
        with pytest.raises(Unauthorized):
            signer.verify(forged, NOW)


def test_a_scoped_identity_has_nothing_outside_its_repository() -> None:
    repo = Repo(1, REPO, is_public=True)
    other = Repo(2, RepoPath("acme/other"), is_public=True)
    for admin in (False, True):
        scoped = Identity(1, "alice", admin, ceiling=Permission.READ, repo_scope=REPO)
        assert effective_permission(scoped, repo, Permission.WRITE) is Permission.READ
        assert effective_permission(scoped, other, Permission.WRITE) is Permission.NONE
    writer = Identity(1, "alice", False, ceiling=Permission.WRITE, repo_scope=REPO)
    assert effective_permission(writer, repo, Permission.ADMIN) is Permission.WRITE
