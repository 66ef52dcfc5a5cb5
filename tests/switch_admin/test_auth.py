"""Session tokens of the admin API (switch/admin/auth.py, issue 18): what other code of
the switch (the WebRTC gateway) relies on through `verify_session`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from devices.accounts import Account
from switch.admin.auth import (
    Principal,
    Role,
    SessionTokens,
    install_sessions,
    load_or_create_key,
    verify_session,
)

ALICE = Account("501410", "acme.wte.example", "0" * 32, "0" * 64, "acme:501410")


def test_a_session_token_names_its_user_until_it_expires() -> None:
    tokens = SessionTokens(b"k" * 32, lifetime=60)
    token, expires = tokens.issue(ALICE, "acme", "501410", 1000.0)
    assert expires == 1060.0
    got = tokens.verify(token, 1059.0)
    assert got == Principal(Role.USER, "501410", customer="acme", user="501410",
                            aor="acme:501410", expires_at=1060.0)
    assert not got.is_admin and not got.sees("acme")  # users only reach /me
    assert tokens.verify(token, 1060.0) is None  # expired


def test_a_tampered_or_foreign_token_is_refused() -> None:
    tokens = SessionTokens(b"k" * 32)
    token, _ = tokens.issue(ALICE, "acme", "501410", 1000.0)
    body, _, sig = token.rpartition(".")
    assert tokens.verify(body + "." + sig[:-2] + "AA", 1001.0) is None
    other = SessionTokens(b"x" * 32)
    assert other.verify(token, 1001.0) is None  # another key (another data directory)
    # another user's payload under this token's signature
    payload = json.loads(base64.urlsafe_b64decode(body[5:] + "=" * (-len(body[5:]) % 4)))
    payload["n"], payload["a"] = "501412", "acme:501412"
    edited = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    assert tokens.verify(f"wtes.{edited}.{sig}", 1001.0) is None
    for junk in ("", "wtes.", "wtes..", "wte_abc", "wtes.!!.??"):
        assert tokens.verify(junk, 1001.0) is None


def test_logout_revokes_one_token_only() -> None:
    tokens = SessionTokens(b"k" * 32)
    first, _ = tokens.issue(ALICE, "acme", "501410", 1000.0)
    second, _ = tokens.issue(ALICE, "acme", "501410", 1000.0)
    tokens.revoke(first, 1001.0)
    assert tokens.verify(first, 1002.0) is None
    assert tokens.verify(second, 1002.0) is not None


def test_verify_session_uses_the_installed_verifier(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    assert load_or_create_key(tmp_path) == key  # kept across restarts
    assert (tmp_path / "api-session.key").stat().st_mode & 0o077 == 0
    tokens = SessionTokens(key)
    token, _ = tokens.issue(ALICE, "acme", "501410", 1000.0)
    install_sessions(None)
    assert verify_session(token, now=1001.0) is None  # no API running
    install_sessions(tokens)
    try:
        got = verify_session(token, now=1001.0)
        assert got is not None and got.aor == "acme:501410"
    finally:
        install_sessions(None)
