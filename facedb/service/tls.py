"""Transport security settings shared by the gRPC and HTTP servers.

Keys travel in headers, so a server reachable from other machines must speak TLS: binding
a non-loopback address in plaintext is refused unless `insecure_plaintext` is set (for a
deployment that terminates TLS in front of facedb). With a client CA, clients must present
a certificate that CA signed (mutual TLS) on both transports.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

from facedb.config import ConfigError, Settings


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the server's certificate chain and key, and the CA that signs client
    certificates when clients must present one (mutual TLS)."""

    cert: str
    key: str
    client_ca: str | None = None


def tls_files(settings: Settings) -> TlsFiles | None:
    """The TLS files of the settings, checked to be readable; None: plaintext."""
    if not settings.tls_cert and not settings.tls_key:
        if settings.tls_client_ca:
            raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    for what, path in (
        ("certificate", settings.tls_cert),
        ("key", settings.tls_key),
        ("client CA", settings.tls_client_ca),
    ):
        if path and not Path(path).is_file():
            raise ConfigError(f"TLS {what} file not found: {path}")
    return TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_client_ca or None)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_transport_security(settings: Settings) -> TlsFiles | None:
    """The TLS files; ConfigError when a non-loopback address would be served in plaintext."""
    tls = tls_files(settings)
    if tls is None and not is_loopback(settings.host) and not settings.insecure_plaintext:
        raise ConfigError(
            f"refusing to serve {settings.host} without TLS: API keys would cross the network "
            "in plaintext; give --tls-cert and --tls-key, or --insecure-plaintext if TLS ends "
            "in front of this server"
        )
    return tls


def grpc_server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    client_ca = Path(tls.client_ca).read_bytes() if tls.client_ca else None
    return grpc.ssl_server_credentials(
        [(Path(tls.key).read_bytes(), Path(tls.cert).read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
