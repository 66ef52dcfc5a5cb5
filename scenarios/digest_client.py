"""The client side of digest authentication (RFC 7616, qop=auth; MD5 and SHA-256)."""

from __future__ import annotations

import secrets

from devices.accounts import ha1, hash_hex
from devices.digest import DigestParseError, parse_auth_params

SUPPORTED = ("SHA-256", "MD5")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization(challenges: list[str], *, method: str, uri: str, username: str,
                  password: str, realm: str = "*") -> str | None:
    """Credentials answering the first usable challenge, or None when none is usable.

    `realm` "*" accepts the realm the challenge names (as PJSIP does)."""
    for value in challenges:
        try:
            scheme, params = parse_auth_params(value)
        except DigestParseError:
            continue
        algorithm = params.get("algorithm", "MD5").upper()
        if scheme != "digest" or algorithm not in SUPPORTED:
            continue
        c_realm = params.get("realm", "")
        if realm != "*" and c_realm != realm:
            continue
        nonce = params.get("nonce", "")
        h1 = ha1(username, c_realm, password, algorithm)
        h2 = hash_hex(algorithm, f"{method}:{uri}")
        parts = [f"username={_q(username)}", f"realm={_q(c_realm)}", f"nonce={_q(nonce)}",
                 f"uri={_q(uri)}", f"algorithm={algorithm}"]
        qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
        if "auth" in qops:
            cnonce = secrets.token_hex(8)
            nc = "00000001"
            resp = hash_hex(algorithm, f"{h1}:{nonce}:{nc}:{cnonce}:auth:{h2}")
            parts += [f"response={_q(resp)}", "qop=auth", f"nc={nc}", f"cnonce={_q(cnonce)}"]
        else:
            parts.append(f"response={_q(hash_hex(algorithm, f'{h1}:{nonce}:{h2}'))}")
        if "opaque" in params:
            parts.append(f"opaque={_q(params['opaque'])}")
        return "Digest " + ", ".join(parts)
    return None
