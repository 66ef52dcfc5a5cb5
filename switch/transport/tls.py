"""TLS contexts for SIP over TLS (RFC 3261 section 26.2, RFC 5630).

When no certificate is configured, a self-signed one is created once under the data
directory so that `make run` serves TLS with nothing else to do. Phones that verify
certificates need an operator-provided one; the log says which is in use.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
from pathlib import Path

log = logging.getLogger(__name__)


def ensure_self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """Return (cert, key) paths under `directory`, creating a self-signed pair if absent."""
    cert_path = directory / "tls-cert.pem"
    key_path = directory / "tls-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host or "localhost")])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    tmp_key = key_path.with_suffix(".tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    tmp_key.replace(key_path)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info("created a self-signed TLS certificate for %s in %s", host, directory)
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def client_context(verify: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def server_context_or_none(cert: Path | None, key: Path | None, *, data_dir: Path,
                           host: str) -> ssl.SSLContext | None:
    """The TLS server context, or None when it cannot be built (issue 20.8).

    A bad certificate or key (missing, unreadable, not PEM, not a pair) must not stop the
    UDP and TCP listeners: this logs one ERROR line naming the file and why, and the caller
    serves the other transports without TLS and WSS.  With no `cert`/`key` configured, a
    self-signed pair under ``data_dir/tls`` is used (created on first start).
    """
    try:
        if cert is None or key is None:
            cert, key = ensure_self_signed(data_dir / "tls", host)
    except OSError as exc:
        log.error("TLS disabled: cannot create a self-signed certificate in %s: %s",
                  data_dir / "tls", exc.strerror or exc)
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    for path, what, load in (
        (cert, "certificate", lambda b: x509.load_pem_x509_certificates(b)),
        (key, "private key", lambda b: serialization.load_pem_private_key(b, password=None)),
    ):
        try:
            load(path.read_bytes())
        except OSError as exc:
            log.error("TLS disabled: cannot read the %s file %s: %s", what, path,
                      exc.strerror or exc)
            return None
        except (ValueError, TypeError) as exc:
            # TypeError: an encrypted key (no password is configured for it)
            log.error("TLS disabled: the %s file %s is not a usable PEM %s: %s", what, path,
                      what, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None
    try:
        return server_context(cert, key)
    except (OSError, ssl.SSLError) as exc:
        log.error("TLS disabled: the certificate %s and the key %s cannot be used together: %s",
                  cert, key, getattr(exc, "reason", None) or exc)
        return None
