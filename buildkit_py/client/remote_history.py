"""A remote bkpyd's build history, read over its History RPC with the local store's face.

``bkpy history`` works the same on either: the records come as JSON, a build's files
(Dockerfile, events, step logs) as byte streams, an export as the bundle's bytes. Only
what needs the daemon's disk itself is refused: importing a bundle into it, and a
post-mortem shell (which opens the builder's root).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from buildkit_py.builder.history_store import pick
from buildkit_py.client.remote import RemoteClient
from buildkit_py.errors import UsageError


class RemoteHistory:
    def __init__(self, client: RemoteClient, name: str) -> None:
        self.client = client
        self.name = name

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(c.record_json) for c in self.client.history("list")]

    def resolve(self, ref: str | None) -> dict[str, Any]:
        return pick(self.records(), ref)

    def read_chunks(self, ref: str, rel: str) -> Iterator[bytes]:
        for chunk in self.client.history("read", ref, rel):
            yield chunk.data

    def remove(self, ref: str) -> None:
        for _ in self.client.history("remove", ref):
            pass

    def export(self, ref: str, dest: Path) -> None:
        tmp = dest.with_name(dest.name + ".part")
        try:
            with open(tmp, "wb") as f:
                for chunk in self.client.history("export", ref):
                    f.write(chunk.data)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def import_bundle(self, src: Path) -> str:
        raise UsageError(f"builds cannot be imported into the history of builder "
                         f"{self.name!r} (a remote bkpyd)",
                         hint="import it into the embedded builder: --builder default")
