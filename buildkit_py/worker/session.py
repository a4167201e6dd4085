"""What the client lends a build: local directories, secrets and ssh agents (and the
device aliases it was granted)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from buildkit_py.errors import BuildError
from buildkit_py.snapshot import Writable


class LentFiles(Protocol):
    """A directory of the client read file by file (a ``--cache-from type=local`` layout):
    a remote build fetches each file through the session the first time it is asked."""

    root: Path  # where the files asked for are on this machine

    def is_dir(self) -> bool: ...

    def file(self, rel: str) -> Path | None:
        """File ``rel`` ("/"-separated) on this machine; None when the client has none."""
        ...


@dataclass
class LocalFiles:
    """A directory on the builder's own machine (an embedded build)."""

    root: Path

    def is_dir(self) -> bool:
        return self.root.is_dir()

    def file(self, rel: str) -> Path | None:
        path = self.root / rel
        return path if path.is_file() else None


def say(fd: int, text: str) -> None:
    """A line of the step debugger's own on the client's terminal (raw or not)."""
    os.write(fd, b"\r\n" + text.encode(errors="replace") + b"\r\n")


@dataclass(frozen=True)
class FailedStep:
    """A RUN step that failed, as the history keeps it for a post-mortem shell: how it ran,
    the committed snapshot it ran on, and a writer of what it changed before failing."""

    name: str
    parent: str | None  # the snapshot key the step's root was made on (None: scratch)
    args: list[str]
    env: list[str]
    cwd: str
    user: str
    hostname: str
    platform: str | None
    network: str
    write_diff: Callable[[Writable], object]  # its changes, as an uncompressed layer tar


@dataclass
class BuildSession:
    local_dirs: dict[str, Path] = field(default_factory=dict)
    secrets: dict[str, bytes] = field(default_factory=dict)
    ssh_sockets: dict[str, Path] = field(default_factory=dict)
    # --allow device=NAME,alias=X: the Dockerfile's device X means NAME
    device_aliases: dict[str, str] = field(default_factory=dict)
    # The step debugger (`bkpy debug`): the command to open on the client's terminal in
    # the container of a RUN step that fails; None: no debugger.
    debug_shell: list[str] | None = None
    # Told about the first RUN step that fails (the build history keeps it for `bkpy
    # history debug`); None: nobody keeps it.
    on_failed_step: Callable[[FailedStep], None] | None = None

    @contextlib.contextmanager
    def terminal(self) -> Iterator[tuple[int, int]]:
        """The client's terminal for the debugger's shell, as (input, output) descriptors:
        this process's own stdin and stdout (a remote session relays its client's)."""
        yield 0, 1

    def terminal_size(self) -> tuple[int, int] | None:
        """(rows, columns) of the client's terminal; None: read it from the descriptors."""
        return None

    def local_dir(self, name: str) -> Path:
        try:
            return self.local_dirs[name]
        except KeyError:
            raise BuildError(f"no local directory {name!r} was given to this build",
                             hint="pass it with --build-context NAME=PATH") from None

    def secret(self, sid: str) -> bytes | None:
        return self.secrets.get(sid)

    def lent_files(self, name: str, path: str) -> LentFiles:
        """The client's directory ``path``, lent to this build as ``name``."""
        return LocalFiles(Path(path))
