"""Naming an image in the local store: a name that already names the same image keeps its
record (and the time it was stored) and writes nothing, as a no-op ``--load`` does; a new
image under the name replaces the record."""

from __future__ import annotations

from pathlib import Path

from buildkit_py.content.images import OCI_MANIFEST, ImageStore
from buildkit_py.content.store import ContentStore


def test_an_unchanged_name_is_not_written_again(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", ContentStore(tmp_path / "content"))
    wal = tmp_path / "images" / "images.db-wal"
    try:
        first = store.put("docker.io/library/app:latest", OCI_MANIFEST, "sha256:" + "a" * 64, 10)
        logged = wal.stat().st_size
        again = store.put("docker.io/library/app:latest", OCI_MANIFEST, "sha256:" + "a" * 64, 10)
        assert again == first
        assert wal.stat().st_size == logged  # nothing written
        assert store.get("docker.io/library/app:latest") == first

        other = store.put("docker.io/library/app:latest", OCI_MANIFEST, "sha256:" + "b" * 64, 12)
        assert other.digest.endswith("b" * 64) and other.created >= first.created
        assert store.get("docker.io/library/app:latest") == other
        # an explicit time (putting a previous record back) is written as given
        back = store.put(first.name, first.media_type, first.digest, first.size, first.created)
        assert back == first and store.get(first.name) == first
    finally:
        store.close()
