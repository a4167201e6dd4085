"""The content store: layout, verified writes, labels, leases, GC, crash safety."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit_py.content import (
    LABEL_UNCOMPRESSED,
    ContentNotFoundError,
    ContentStore,
    DigestMismatchError,
    InvalidDigestError,
)
from buildkit_py.errors import UserError


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ContentStore]:
    s = ContentStore(tmp_path)
    yield s
    s.close()


def test_blobs_live_in_oci_layout_and_read_back(store: ContentStore, tmp_path: Path) -> None:
    digest = store.write(b"hello")
    assert digest == _d(b"hello")
    path = tmp_path / "content/blobs/sha256" / digest.split(":")[1]
    assert store.path(digest) == path and path.read_bytes() == b"hello"
    assert store.has(digest) and store.read(digest) == b"hello"
    with store.open(digest) as f:
        assert f.read() == b"hello"
    assert store.info(digest).size == 5
    assert store.write(b"hello", _d(b"hello")) == digest  # idempotent
    assert [i.digest for i in store.walk()] == [digest]



def test_reading_blobs_leaves_the_metadata_database_unopened(tmp_path: Path) -> None:
    """A cached rebuild only reads blobs: the labels/leases database opens on first use."""
    digest = _d(b"hello")
    blob = tmp_path / "content/blobs/sha256" / digest.split(":")[1]
    s = ContentStore(tmp_path)
    blob.write_bytes(b"hello")  # as an earlier process left it
    assert s.read(digest) == b"hello" and s.has(digest)
    s.close()
    assert not (tmp_path / "content/metadata.db").exists()
    s = ContentStore(tmp_path)
    assert s.labels(digest) == {}
    s.close()
    assert (tmp_path / "content/metadata.db").exists()

def test_mismatched_digest_stores_nothing(store: ContentStore) -> None:
    with pytest.raises(DigestMismatchError):
        store.write(b"evil", _d(b"good"))
    with pytest.raises(DigestMismatchError, match="size"):
        with store.writer(expected_size=10) as w:
            w.write(b"short")
    with pytest.raises(DigestMismatchError):
        with store.writer(_d(b"good"), 4) as w:
            w.write(b"evil")
    assert not store.has(_d(b"evil")) and not store.has(_d(b"good"))
    assert list(store.walk()) == []
    assert os.listdir(store.ingest_dir) == []


def test_streaming_writer_hashes_while_writing(store: ContentStore) -> None:
    chunks = [os.urandom(100_000) for _ in range(5)]
    data = b"".join(chunks)
    with store.writer(_d(data), len(data)) as w:
        for c in chunks:
            w.write(c)
    assert w.digest == _d(data) and store.read(_d(data)) == data
    assert os.stat(store.path(_d(data))).st_mode & 0o777 == 0o444


def test_error_inside_writer_block_discards_the_blob(store: ContentStore) -> None:
    with pytest.raises(RuntimeError):
        with store.writer() as w:
            w.write(b"partial")
            raise RuntimeError("network dropped")
    assert not store.has(_d(b"partial"))
    assert os.listdir(store.ingest_dir) == []


def test_killed_writer_leaves_no_visible_blob_and_gc_cleans_ingest(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from buildkit_py.content import ContentStore
        s = ContentStore({str(tmp_path)!r})
        with s.writer() as w:
            w.write(b"x" * 3_000_000)
            print("written", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "written"
        store = ContentStore(tmp_path)
        # While the writer lives, gc must leave its ingest file alone.
        assert store.gc(keep=set()).ingests_removed == 0
        assert len(os.listdir(store.ingest_dir)) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert list(store.walk()) == []
        assert not store.has(_d(b"x" * 3_000_000))
        assert store.gc(keep=set()).ingests_removed == 1
        assert os.listdir(store.ingest_dir) == []
        store.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_corrupted_blob_is_detected(store: ContentStore) -> None:
    digest = store.write(b"pristine")
    path = store.path(digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(DigestMismatchError, match="corrupted"):
        store.verify(digest)


def test_labels_persist_and_can_be_removed(store: ContentStore, tmp_path: Path) -> None:
    digest = store.write(b"gz", labels={LABEL_UNCOMPRESSED: _d(b"tar")})
    store.update_labels(digest, {"extra": "1"})
    store.close()
    again = ContentStore(tmp_path)
    assert again.info(digest).labels == {LABEL_UNCOMPRESSED: _d(b"tar"), "extra": "1"}
    again.update_labels(digest, {"extra": None})
    assert again.labels(digest) == {LABEL_UNCOMPRESSED: _d(b"tar")}
    again.close()


def test_leases_protect_from_gc_until_released(store: ContentStore) -> None:
    kept = store.write(b"kept")
    leased = store.write(b"leased")
    loose = store.write(b"loose")
    with store.lease("build-1") as lease:
        lease.add(leased)
        in_lease = store.write(b"written under lease", lease=lease)
        assert store.leases() == ["build-1"]
        result = store.gc(keep={kept})
        assert result.removed == [loose]
        assert result.bytes_freed == len(b"loose")
        assert store.has(leased) and store.has(in_lease)
    assert store.leases() == []
    assert sorted(store.gc(keep={kept}).removed) == sorted([leased, in_lease])
    assert [i.digest for i in store.walk()] == [kept]
    assert store.labels(loose) == {}


def test_expired_lease_no_longer_protects(store: ContentStore) -> None:
    digest = store.write(b"old")
    with store.lease("stale", expires_in=-1.0) as lease:
        lease.add(digest)
        assert store.gc(keep=set()).removed == [digest]
    assert store.leases() == []


def test_missing_and_invalid_digests_are_user_errors(store: ContentStore) -> None:
    missing = _d(b"nothing")
    for call in (store.path, store.open, store.info):
        with pytest.raises(ContentNotFoundError):
            call(missing)
    with pytest.raises(InvalidDigestError):
        store.has("sha256:XYZ")
    with pytest.raises(InvalidDigestError):
        store.path("md5:" + "0" * 32)
    assert issubclass(ContentNotFoundError, UserError)
    assert store.delete(store.write(b"x")) is True
    assert store.delete(_d(b"x")) is False


def test_concurrent_identical_writes_store_once(store: ContentStore) -> None:
    import threading

    data = os.urandom(500_000)
    errors: list[BaseException] = []

    def put() -> None:
        try:
            store.write(data, _d(data))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=put) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.read(_d(data)) == data
    assert os.listdir(store.ingest_dir) == []
