"""Real Git servers on loopback for the Git source tests, and the repositories they serve.

``make_repos(base)`` writes bare repositories under ``base``: ``app.git`` (branches
``main`` and ``dev``, a lightweight tag ``v1``, an annotated tag ``v1-ann``, a subdirectory,
an executable, a symlink and a submodule ``lib`` pointing at ``../lib.git``) and ``lib.git``.
``GitDaemon`` serves ``base`` over ``git://`` (``git daemon --export-all``);
``GitHTTP`` serves it over HTTP through ``git http-backend`` (CGI), optionally demanding
``Authorization: basic base64(x-access-token:TOKEN)`` as BuildKit sends a token, and counts
the fetches (protocol v2 ``command=fetch`` requests) it serves.

Importable by other test directories (the e2e tests use the same servers).
"""

from __future__ import annotations

import base64
import gzip
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "HOME": os.devnull,
    "LC_ALL": "C",
}


def git(*args: str, cwd: Path | None = None, date: int | None = None) -> str:
    env = dict(os.environ, **GIT_ENV)
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{date} +0000"
    p = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always",
                        *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {p.stderr}")
    return p.stdout.strip()


@dataclass
class Repos:
    base: Path
    work: Path  # the working clone of app.git (commit and push to move refs)
    main1: str  # first commit on main (tagged v1 and v1-ann)
    main2: str  # main's head
    dev: str
    lib: str  # lib.git's head (the submodule's commit)
    ann_tag: str  # the annotated tag object of v1-ann

    def commit(self, path: str, text: str, branch: str = "main") -> str:
        """Commit ``path`` with ``text`` on ``branch`` and push it; the new commit."""
        git("checkout", "-q", branch, cwd=self.work)
        (self.work / path).parent.mkdir(parents=True, exist_ok=True)
        (self.work / path).write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", f"change {path}", cwd=self.work)
        git("push", "-q", "origin", branch, cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def make_repos(base: Path) -> Repos:
    base.mkdir(parents=True, exist_ok=True)
    lib_work = base / "lib-work"
    git("init", "-q", str(lib_work))
    (lib_work / "lib.txt").write_text("library\n")
    git("add", "-A", cwd=lib_work)
    git("commit", "-q", "-m", "lib", cwd=lib_work, date=1_600_000_000)
    lib = git("rev-parse", "HEAD", cwd=lib_work)
    git("clone", "-q", "--bare", str(lib_work), str(base / "lib.git"))

    work = base / "app-work"
    git("init", "-q", str(work))
    (work / "README.md").write_text("hello from git\n")
    (work / "run.sh").write_text("#!/bin/sh\necho run\n")
    (work / "run.sh").chmod(0o755)
    (work / "sub" / "dir").mkdir(parents=True)
    (work / "sub" / "dir" / "deep.txt").write_text("deep\n")
    (work / "sub" / "other.txt").write_text("other\n")
    os.symlink("README.md", work / "link")
    (work / "lib").mkdir()  # the submodule's (empty) directory keeps its gitlink
    (work / ".gitmodules").write_text('[submodule "lib"]\n\tpath = lib\n\turl = ../lib.git\n')
    git("add", "-A", cwd=work)
    git("update-index", "--add", "--cacheinfo", f"160000,{lib},lib", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work, date=1_600_000_100)
    main1 = git("rev-parse", "HEAD", cwd=work)
    git("tag", "v1", cwd=work)
    git("tag", "-a", "-m", "annotated v1", "v1-ann", cwd=work, date=1_600_000_150)
    ann_tag = git("rev-parse", "v1-ann", cwd=work)
    git("checkout", "-q", "-b", "dev", cwd=work)
    (work / "dev.txt").write_text("dev branch\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "dev", cwd=work, date=1_600_000_200)
    dev = git("rev-parse", "HEAD", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    (work / "README.md").write_text("hello again\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "second", cwd=work, date=1_600_000_300)
    main2 = git("rev-parse", "HEAD", cwd=work)
    git("clone", "-q", "--bare", str(work), str(base / "app.git"))
    git("remote", "add", "origin", str(base / "app.git"), cwd=work)
    git("fetch", "-q", "origin", cwd=work)
    return Repos(base, work, main1, main2, dev, lib, ann_tag)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.03)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class GitDaemon:
    """``git daemon`` serving every repository under ``base`` at ``git://127.0.0.1:PORT/``."""

    def __init__(self, base: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["git", "daemon", "--export-all", "--reuseaddr", f"--base-path={base}",
             "--listen=127.0.0.1", f"--port={self.port}", str(base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc)
        self.url = f"git://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass
class _State:
    base: Path
    token: str | None = None
    fetches: int = 0
    ls_refs: int = 0
    requests: list[str] = field(default_factory=list)
    auth_seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._chunked()
        else:
            body = b""
        self._cgi(body)

    def _chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def _cgi(self, body: bytes) -> None:
        # One request per connection: a body left unread (a refused POST) can then never
        # be parsed as the next request (curl reports that as "Received HTTP/0.9").
        self.close_connection = True
        st: _State = self.server.state
        path, _, query = self.path.partition("?")
        auth = self.headers.get("Authorization")
        with st.lock:
            st.requests.append(f"{self.command} {path}")
            if auth:
                st.auth_seen.append(auth)
        if st.token is not None:
            want = "basic " + base64.b64encode(f"x-access-token:{st.token}".encode()).decode()
            if auth is None or auth.lower() != want.lower():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                return
        plain = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" \
            else body
        if b"command=fetch" in plain or (self.command == "POST" and b"want " in plain
                                         and b"command=" not in plain):
            with st.lock:
                st.fetches += 1
        if b"command=ls-refs" in plain:
            with st.lock:
                st.ls_refs += 1
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(st.base), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.devnull,
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                           check=False)
        head, _, payload = p.stdout.partition(b"\r\n\r\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


class GitHTTP:
    """Smart HTTP at ``http://127.0.0.1:PORT/`` for the repositories under ``base``."""

    def __init__(self, base: Path, token: str | None = None) -> None:
        self.state = _State(base, token)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.state = self.state  # type: ignore[attr-defined]
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def fetches(self) -> int:
        """Fetches served (protocol v2 ``command=fetch``); ``ls-remote`` is not one."""
        return self.state.fetches

    @property
    def ls_refs(self) -> int:
        """``ls-remote`` and the ref listing a fetch starts with (``command=ls-refs``)."""
        return self.state.ls_refs

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


SSHD = "/usr/sbin/sshd"


class SSHServer:
    """A real ``sshd`` on 127.0.0.1 serving the repositories under ``base`` to the current
    user by key (``ssh://USER@127.0.0.1:PORT/<base>/app.git``), and an ``ssh-agent`` holding
    that key (``agent_sock``). ``known_hosts`` is the server's line for a known_hosts file.
    Needs root (sshd) and Debian's openssh-server."""

    def __init__(self, base: Path, work: Path) -> None:
        import pwd

        work.mkdir(parents=True, exist_ok=True)
        self.user = pwd.getpwuid(os.getuid()).pw_name
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(work / name)], check=True)
        (work / "authorized_keys").write_text((work / "client_key.pub").read_text())
        self.port = free_port()
        config = work / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {work / 'host_key'}",
            f"AuthorizedKeysFile {work / 'authorized_keys'}", f"PidFile {work / 'sshd.pid'}",
            "StrictModes no", "UsePAM no", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            f"AllowUsers {self.user}", ""]))
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc)
        self.agent_sock = work / "agent.sock"
        self.agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(self.agent_sock)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.agent_sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        subprocess.run(["ssh-add", "-q", str(work / "client_key")], check=True,
                       env=dict(os.environ, SSH_AUTH_SOCK=str(self.agent_sock)),
                       capture_output=True)
        host_key = (work / "host_key.pub").read_text().split()
        self.known_hosts = f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n"
        self.url = f"ssh://{self.user}@127.0.0.1:{self.port}{base}"

    def stop(self) -> None:
        for proc in (self.proc, self.agent):
            proc.terminate()
            proc.wait(10)
