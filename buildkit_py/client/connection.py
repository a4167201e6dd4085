"""One gRPC connection to a ``bkpyd``: where it is, how it is secured, what its errors
mean to the user.

``unix://`` endpoints are local and never use TLS; ``tcp://`` ones do when TLS files are
given (mutual TLS with a CA). A failed call becomes a :class:`UserError`: the daemon's
own rendered error (Dockerfile snippet, log tail, hint, exit code) when it sent one in
the trailing metadata, else a short message naming the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from buildkit_py.api import control_pb2_grpc as pb_grpc
from buildkit_py.api.tls import TLSFiles
from buildkit_py.api.wire import error_from_trailer
from buildkit_py.errors import BuildError, UsageError, UserError

MAX_MESSAGE = 16 << 20


class RemoteBuildError(UserError):
    """A failure the daemon already rendered (Dockerfile snippet, log tail, hint), taken
    apart again so the CLI can reword the ERROR line and show the log block as it shows a
    local build's."""

    def __init__(self, text: str, exit_code: int) -> None:
        lines = text.split("\n")
        # the last ERROR line: a step's logs, printed before it, may hold such lines too
        at = max((i for i, line in enumerate(lines) if line.startswith("ERROR: ")),
                 default=None)
        if at is None:
            super().__init__(text)
            self._details: list[str] = []
        else:
            message, rest = [lines[at].removeprefix("ERROR: ")], lines[at + 1:]
            while rest and not rest[0].startswith("hint: "):  # a message of several lines
                message.append(rest.pop(0))
            hint = "\n".join(rest).removeprefix("hint: ") if rest else None
            super().__init__("\n".join(message), hint=hint)
            self._details = lines[:at]
        self.rendered = text
        self.exit_code = exit_code

    def details(self) -> list[str]:
        return self._details

    def log_block(self) -> list[str]:
        lines = self._details
        if len(lines) < 3 or lines[0] != "------" or not lines[1].startswith(" > "):
            return []
        # the block's last rule; the snippet's rules are longer
        end = max(i for i, line in enumerate(lines) if line == "------")
        return lines[:end + 1] if end > 0 else []

    def render(self) -> str:
        return self.rendered


class DaemonUnavailableError(UserError):
    pass


def grpc_target(endpoint: str) -> str:
    """``unix:///path`` or ``tcp://host:port`` -> a grpc channel target."""
    if endpoint.startswith("unix://"):
        return "unix:" + endpoint.removeprefix("unix://")
    if endpoint.startswith("tcp://"):
        return endpoint.removeprefix("tcp://")
    raise UsageError(f"unknown builder endpoint {endpoint!r}",
                     hint="use unix:///PATH or tcp://HOST:PORT")


def rpc_error(err: grpc.RpcError, endpoint: str) -> UserError:
    """What a failed call to ``endpoint`` means to the user."""
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    text, code = error_from_trailer(trailing or ())
    if text:
        return RemoteBuildError(text, code)
    status = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    if status == grpc.StatusCode.UNAVAILABLE:
        return DaemonUnavailableError(
            f"cannot reach the builder daemon at {endpoint}: {details}",
            hint="start it (bkpy builder inspect --bootstrap) or check the address and "
                 "TLS settings")
    return BuildError(f"builder daemon at {endpoint}: {details}")


@dataclass
class Connection:
    """A channel to one endpoint, opened on first use."""

    endpoint: str
    tls: TLSFiles | None = None

    def __post_init__(self) -> None:
        self._channel: grpc.Channel | None = None

    @property
    def stub(self) -> pb_grpc.ControlStub:
        if self._channel is None:
            target = grpc_target(self.endpoint)
            options: list[tuple[str, Any]] = [
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE)]
            if self.tls is not None and self.tls.enabled and not self.endpoint.startswith(
                    "unix://"):
                if self.tls.servername:
                    options.append(("grpc.ssl_target_name_override", self.tls.servername))
                self._channel = grpc.secure_channel(target, self.tls.channel_credentials(),
                                                    options=options)
            else:
                self._channel = grpc.insecure_channel(target, options=options)
        return pb_grpc.ControlStub(self._channel)

    def error(self, err: grpc.RpcError) -> UserError:
        return rpc_error(err, self.endpoint)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
