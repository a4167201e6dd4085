"""The session's ssh agent forwarding and secrets, daemon end wired to client end.

The two ends talk through their real message streams (the same objects the gRPC calls
carry), connected in-process; a real unix-socket agent answers on the client side.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from buildkit_py.api.request import BuildRequest, SecretSpec, SSHSpec
from buildkit_py.session.client import ClientSession
from buildkit_py.session.daemon import DaemonSession, SSHForwarder


def _echo_agent(path: Path) -> socket.socket:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(b"agent:" + data)

    threading.Thread(target=serve, daemon=True).start()
    return srv


def _wire(tmp_path: Path, req: BuildRequest) -> tuple[DaemonSession, ClientSession]:
    daemon = DaemonSession("s1")
    client = ClientSession(req, {})
    threading.Thread(target=daemon.consume, args=(client.requests(),), daemon=True).start()
    threading.Thread(target=client.serve, args=(daemon.outgoing(),), daemon=True).start()
    return daemon, client


def test_ssh_agent_connections_are_proxied_to_the_client_agent(tmp_path: Path) -> None:
    agent = _echo_agent(tmp_path / "agent.sock")
    req = BuildRequest(None, None, b"", ssh=[SSHSpec("default", [str(tmp_path / "agent.sock")])])
    daemon, client = _wire(tmp_path, req)
    fwd = SSHForwarder(daemon, tmp_path / "daemon-ssh", ["default"])
    sockets = fwd.start()
    try:
        for n in range(2):  # two connections in a row, as ssh clients make
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(10)
                conn.connect(str(sockets["default"]))
                conn.sendall(f"hello {n}".encode())
                assert conn.recv(4096) == f"agent:hello {n}".encode()
    finally:
        fwd.close()
        client.close()
        daemon.close()
        agent.close()


def test_secrets_are_asked_for_when_needed(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("v4lue")
    req = BuildRequest(None, None, b"", secrets=[SecretSpec("tok", src=str(tmp_path / "tok"))])
    daemon, client = _wire(tmp_path, req)
    try:
        assert daemon.secret("tok") == b"v4lue"
        assert daemon.secret("other") is None
        (tmp_path / "tok").write_text("rotated")
        assert daemon.secret("tok") == b"rotated"  # read again: nothing was kept
    finally:
        client.close()
        daemon.close()
