"""A --cache-to type=local layout sent by a daemon, merged into the client's dest."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import tarfile
from pathlib import Path

import zstandard

from buildkit_py.api import control_pb2 as pb
from buildkit_py.client.outputs import ReceivedCache
from buildkit_py.control.deliveries import Delivery

REF = "org.opencontainers.image.ref.name"


def _layout(root: Path, blobs: list[bytes], tag: str) -> str:
    (root / "blobs" / "sha256").mkdir(parents=True)
    digest = ""
    for data in blobs:
        digest = hashlib.sha256(data).hexdigest()
        (root / "blobs" / "sha256" / digest).write_bytes(data)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "m", "digest": f"sha256:{digest}", "size": 1,
         "annotations": {REF: tag}}]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return digest


def _receive(delivery: Delivery, dest: Path) -> str:
    got = ReceivedCache(dest)
    for frame in delivery.frames():
        got.write(frame)
    return got.finish()


def test_merge_keeps_other_tags_and_skips_what_the_client_has(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _layout(dest, [b"old"], "other")
    sent = tmp_path / "sent"
    new = _layout(sent, [b"old", b"new"], "latest")
    old = hashlib.sha256(b"old").hexdigest()
    before = (dest / "blobs" / "sha256" / old).stat().st_ino
    d = Delivery(0, "cache", sent)
    listing = [pb.Stat(path=rel, mode=stat.S_IFREG | 0o644, size=3)
               for rel in (f"blobs/sha256/{old}", "index.json", "oci-layout")]
    d.skip_present(listing)
    assert d.skip == {f"blobs/sha256/{old}"}  # never the index
    assert _receive(d, dest) == ""
    index = json.loads((dest / "index.json").read_text())
    assert sorted(m["annotations"][REF] for m in index["manifests"]) == ["latest", "other"]
    assert (dest / "blobs" / "sha256" / new).read_bytes() == b"new"
    assert (dest / "blobs" / "sha256" / old).stat().st_ino == before  # not re-sent


def test_same_tag_is_replaced_and_a_corrupt_blob_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    _layout(dest, [b"one"], "latest")
    sent = tmp_path / "sent"
    two = _layout(sent, [b"two"], "latest")
    assert _receive(Delivery(0, "cache", sent), dest) == ""
    index = json.loads((dest / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [f"sha256:{two}"]

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("blobs/sha256/" + "0" * 64)
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    got = ReceivedCache(tmp_path / "other")
    got.write(zstandard.ZstdCompressor().compress(buf.getvalue()))
    assert "corrupted" in got.finish()
    assert not (tmp_path / "other" / "blobs" / "sha256" / ("0" * 64)).exists()
