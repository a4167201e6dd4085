"""TLS material for the daemon's TCP listeners and for clients (mutual TLS with a CA)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_py.errors import UsageError


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {what} {path}: {err.strerror}") from None


@dataclass(frozen=True)
class TLSFiles:
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    servername: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.cacert or self.cert or self.key)

    def server_credentials(self) -> Any:
        """Server side: cert+key required; a CA makes client certificates mandatory."""
        import grpc  # reason: grpc (~50 ms) only to serve or dial TLS; --help imports this module

        cert, key = _read(self.cert, "--tlscert"), _read(self.key, "--tlskey")
        if cert is None or key is None:
            raise UsageError("TLS needs both --tlscert and --tlskey")
        ca = _read(self.cacert, "--tlscacert")
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                           require_client_auth=ca is not None)

    def channel_credentials(self) -> Any:
        import grpc  # reason: grpc (~50 ms) only to serve or dial TLS; --help imports this module

        if bool(self.cert) != bool(self.key):
            raise UsageError("a client certificate needs both cert and key")
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.cacert, "cacert"),
            private_key=_read(self.key, "key"),
            certificate_chain=_read(self.cert, "cert"))
