"""What the client lends a build: local directories, secrets and ssh agents (and the
device aliases it was granted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from buildkit_py.errors import BuildError


@dataclass
class BuildSession:
    local_dirs: dict[str, Path] = field(default_factory=dict)
    secrets: dict[str, bytes] = field(default_factory=dict)
    ssh_sockets: dict[str, Path] = field(default_factory=dict)
    # --allow device=NAME,alias=X: the Dockerfile's device X means NAME
    device_aliases: dict[str, str] = field(default_factory=dict)

    def local_dir(self, name: str) -> Path:
        try:
            return self.local_dirs[name]
        except KeyError:
            raise BuildError(f"no local directory {name!r} was given to this build",
                             hint="pass it with --build-context NAME=PATH") from None

    def secret(self, sid: str) -> bytes | None:
        return self.secrets.get(sid)
