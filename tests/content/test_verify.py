"""Verified reads of stored blobs, and finding/dropping corrupted ones."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py.content import (
    ContentStore,
    CorruptContentError,
    DigestMismatchError,
    VerifyingReader,
    copy_verified,
)
from buildkit_py.content.images import OCI_INDEX, OCI_MANIFEST, ImageStore
from buildkit_py.content.integrity import drop_corrupt, find_corrupt
from buildkit_py.errors import UserError


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ContentStore]:
    s = ContentStore(tmp_path / "content")
    yield s
    s.close()


def _corrupt(store: ContentStore, digest: str, at: int = 0) -> None:
    path = store.path(digest)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))


BIG = os.urandom(3 * (1 << 20) + 17)


def test_a_sound_blob_reads_back_whole_and_verified(store: ContentStore) -> None:
    digest = store.write(BIG)
    with store.open_verified(digest) as f:
        assert f.size == len(BIG)
        parts = []
        while chunk := f.read(65536):
            parts.append(chunk)
        assert f.verified
    assert b"".join(parts) == BIG
    assert store.read_verified(digest) == BIG


def test_corruption_raises_on_the_read_reaching_the_end(store: ContentStore) -> None:
    digest = store.write(BIG)
    _corrupt(store, digest, at=10)
    actual = _d(store.path(digest).read_bytes())
    with store.open_verified(digest) as f:
        got = 0
        with pytest.raises(CorruptContentError) as info:
            while True:
                got += len(f.read(1 << 20))
        # the first three full chunks came through; the last one (to the end) did not
        assert got == 3 * (1 << 20)
    err = info.value
    assert err.digest == digest and err.actual == actual
    assert isinstance(err, DigestMismatchError) and isinstance(err, UserError)
    assert f"blob {digest} in the content store is corrupted: its content hashes to " \
           f"{actual}" in err.render()
    assert err.hint is not None and "bkpy prune --corrupt" in err.hint


def test_a_partial_read_checks_nothing(store: ContentStore) -> None:
    digest = store.write(BIG)
    _corrupt(store, digest, at=len(BIG) - 1)
    with store.open_verified(digest) as f:
        assert f.read(4) == BIG[:4]
        assert not f.verified


def test_read_all_and_readinto(store: ContentStore) -> None:
    digest = store.write(b"0123456789")
    with store.open_verified(digest) as f:
        buf = bytearray(4)
        assert f.readinto(buf) == 4 and bytes(buf) == b"0123"
        assert f.read() == b"456789"
        assert f.verified
    _corrupt(store, digest)
    with pytest.raises(CorruptContentError):
        store.read_verified(digest)


def test_empty_blob(store: ContentStore) -> None:
    digest = store.write(b"")
    with store.open_verified(digest) as f:
        assert f.read(100) == b""
        assert f.verified


def test_a_truncated_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    with open(path, "rb") as raw, VerifyingReader(raw, _d(b"abcd"), size=4) as f:
        assert f.read(3) == b"abc"
        with pytest.raises(CorruptContentError):
            f.read(1)


def test_copy_verified(store: ContentStore) -> None:
    digest = store.write(BIG)
    out = io.BytesIO()
    with store.open_verified(digest) as f:
        assert copy_verified(f, out) == len(BIG)
    assert out.getvalue() == BIG
    _corrupt(store, digest, at=5)
    out = io.BytesIO()
    with store.open_verified(digest) as f, pytest.raises(CorruptContentError):
        copy_verified(f, out)
    assert len(out.getvalue()) < len(BIG)  # the last chunk was never written


def test_tarfile_streaming_stops_on_corruption(store: ContentStore) -> None:
    digest = store.write(BIG)
    _corrupt(store, digest, at=len(BIG) // 2)
    with tarfile.open(fileobj=io.BytesIO(), mode="w|") as tf, \
            store.open_verified(digest) as f, pytest.raises(CorruptContentError):
        ti = tarfile.TarInfo("blob")
        ti.size = f.size
        tf.addfile(ti, f)


def test_verify_names_what_the_blob_hashes_to(store: ContentStore) -> None:
    digest = store.write(b"payload")
    store.verify(digest)
    _corrupt(store, digest)
    with pytest.raises(CorruptContentError) as info:
        store.verify(digest)
    assert info.value.actual == _d(store.path(digest).read_bytes())


def _manifest(store: ContentStore, config: str, layers: list[str]) -> tuple[str, int]:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": config, "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": d, "size": 1} for d in layers]}
    data = json.dumps(doc).encode()
    return store.write(data), len(data)


def test_find_and_drop_corrupt_with_what_refers_to_it(store: ContentStore,
                                                      tmp_path: Path) -> None:
    images = ImageStore(tmp_path / "images", store)
    config = store.write(b"{}")
    shared = store.write(b"shared layer")
    bad = store.write(b"layer that will rot")
    other = store.write(b"other layer")
    m_bad, n_bad = _manifest(store, config, [shared, bad])
    m_ok, n_ok = _manifest(store, config, [shared, other])
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": m_bad, "size": n_bad}]}).encode()
    idx = store.write(index)
    images.put("docker.io/library/bad:1", OCI_INDEX, idx, len(index))
    images.put("docker.io/library/alsobad:1", OCI_MANIFEST, m_bad, n_bad)
    images.put("docker.io/library/ok:1", OCI_MANIFEST, m_ok, n_ok)
    assert find_corrupt(store) == []

    _corrupt(store, bad)
    found = find_corrupt(store)
    assert [(c.digest, c.size) for c in found] == [(bad, len(b"layer that will rot"))]
    assert found[0].actual == _d(store.path(bad).read_bytes())

    result = drop_corrupt(store, images)
    assert [c.digest for c in result.corrupt] == [bad]
    assert sorted(d for d, _ in result.dependents) == sorted([m_bad, idx])
    assert sorted(result.images) == ["docker.io/library/alsobad:1", "docker.io/library/bad:1"]
    for gone in (bad, m_bad, idx):
        assert not store.has(gone)
    for kept in (config, shared, other, m_ok):
        assert store.has(kept)
    assert [r.name for r in images.all()] == ["docker.io/library/ok:1"]
    assert find_corrupt(store) == []
    assert drop_corrupt(store, images).corrupt == []
    images.close()
