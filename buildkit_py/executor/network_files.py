"""Generated ``/etc/hosts`` and ``/etc/resolv.conf`` for RUN containers.

hosts: localhost entries naming the sandbox hostname, plus ``--add-host`` entries.
resolv.conf: the host's file; when the container gets its own network namespace, loopback
nameservers (unreachable from inside) are dropped and, if none remain, public resolvers are
used, as BuildKit does.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from pathlib import Path

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
# systemd-resolved's stub (127.0.0.53) is useless in a netns; its upstream list is here.
_RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")
_DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844")


def hosts_content(hostname: str, extra_hosts: list[tuple[str, str]] | None = None) -> bytes:
    lines = [f"127.0.0.1\tlocalhost {hostname}", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for name, ip in extra_hosts or []:
        lines.append(f"{ip}\t{name}")
    return ("\n".join(lines) + "\n").encode()


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def filter_resolv_conf(data: bytes) -> bytes:
    """Drop loopback nameservers; fall back to public resolvers when none remain."""
    out: list[str] = []
    kept = 0
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            if _is_loopback(fields[1]):
                continue
            kept += 1
        out.append(line)
    if kept == 0:
        out.extend(f"nameserver {ns}" for ns in _DEFAULT_NAMESERVERS)
    return ("\n".join(out) + "\n").encode()


class ResolvConfCache:
    """The host resolv.conf, re-read only when it changes (stat), filtered per network mode."""

    def __init__(self, path: Path = HOST_RESOLV_CONF) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._key: tuple[int, int, int] | None = None
        self._raw = b""
        self._filtered = b""

    def content(self, own_netns: bool) -> bytes:
        with self._lock:
            self._refresh()
            return self._filtered if own_netns else self._raw

    def _refresh(self) -> None:
        path = self._path
        try:
            st = os.stat(path)
        except OSError:
            key = (0, 0, 0)
            if key != self._key:
                self._key, self._raw = key, b""
                self._filtered = filter_resolv_conf(b"")
            return
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == self._key:
            return
        raw = path.read_bytes()
        filtered_src = raw
        if all(_is_loopback(ns) for ns in _nameservers(raw)) and _RESOLVED_UPSTREAM.is_file():
            filtered_src = _RESOLVED_UPSTREAM.read_bytes()
        self._key, self._raw = key, raw
        self._filtered = filter_resolv_conf(filtered_src)


def _nameservers(data: bytes) -> list[str]:
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            out.append(fields[1])
    return out
