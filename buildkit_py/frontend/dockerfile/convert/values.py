"""Validation of config values: EXPOSE port specs and STOPSIGNAL names (BuildKit rules)."""

from __future__ import annotations

from typing import Final

from buildkit_py.errors import DockerfileError
from buildkit_py.gostrings import go_quote

_PROTOS: Final = ("tcp", "udp", "sctp")

_SIGNALS: Final = frozenset(
    "ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR QUIT SEGV "
    "STKFLT STOP SYS TERM TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ "
    "RTMIN RTMAX".split()
) | frozenset(f"RTMIN+{i}" for i in range(1, 16)) | frozenset(
    f"RTMAX-{i}" for i in range(1, 15)
)


def _port_number(text: str, raw: str) -> int:
    if not text.isdigit():
        raise DockerfileError(f"invalid containerPort: {raw}")
    value = int(text)
    if value > 65535:
        raise DockerfileError(f"invalid containerPort: {raw}")
    return value


def parse_port_specs(specs: list[str]) -> list[str]:
    """``["80", "53/UDP", "8000-8002"]`` -> ``["80/tcp", "53/udp", "8000/tcp", ...]``.

    Only the container part of ``ip:host:container`` forms is used, as in BuildKit.
    """
    out: list[str] = []
    for raw in specs:
        container = raw.rsplit(":", 1)[-1]
        port, _, given = container.partition("/")
        proto = (given or "tcp").lower()
        if not port:
            raise DockerfileError(f"invalid port: {go_quote(raw)}: no port specified")
        if proto not in _PROTOS:
            raise DockerfileError(f"invalid port: {go_quote(raw)}: invalid proto: {given}")
        start_s, dash, end_s = port.partition("-")
        start = _port_number(start_s, port)
        end = _port_number(end_s, port) if dash else start
        if end < start:
            raise DockerfileError(f"invalid containerPort: {port}")
        # Duplicates are kept: BuildKit's history line lists every port given.
        out.extend(f"{number}/{proto}" for number in range(start, end + 1))
    return out


def validate_stop_signal(value: str) -> None:
    """Accept a signal number or a name with or without ``SIG`` (any letter case)."""
    if value.lstrip("-").isdigit():
        if int(value) == 0:
            raise DockerfileError(f"invalid signal: {value}")
        return
    name = value.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name not in _SIGNALS:
        raise DockerfileError(f"invalid signal: {value}")
