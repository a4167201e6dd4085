"""Where blobs are known to live: recorded as content labels (latest repository first,
at most five, only for stored blobs) and read back as mount sources for another
repository of the same registry."""

from __future__ import annotations

from pathlib import Path

from buildkit_py.content import ContentStore
from buildkit_py.registry.blob_sources import MAX_REPOSITORIES, label_key, mount_sources, record


def test_record_keeps_the_latest_repository_first_and_mounts_from_another(
        tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "content")
    a, b = store.write(b"layer a"), store.write(b"layer b")
    record(store, "reg.example:5000", "team/base", [a, b])
    record(store, "reg.example:5000", "team/app", [a])
    assert store.labels(a)[label_key("reg.example:5000")] == "team/app,team/base"
    assert mount_sources(store, "reg.example:5000", "team/new", [a, b]) == {
        a: "team/app", b: "team/base"}
    # pushing to the repository that holds it: any other one, else nothing to mount from
    assert mount_sources(store, "reg.example:5000", "team/app", [a, b]) == {
        a: "team/base", b: "team/base"}
    assert mount_sources(store, "reg.example:5000", "team/base", [b]) == {}
    # another registry knows nothing of them
    assert mount_sources(store, "other.example", "team/new", [a, b]) == {}
    store.close()


def test_record_is_bounded_and_skips_blobs_the_store_lacks(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "content")
    a = store.write(b"layer a")
    missing = "sha256:" + "0" * 64
    for i in range(MAX_REPOSITORIES + 3):
        record(store, "r", f"repo{i}", [a, missing])
    repos = store.labels(a)[label_key("r")].split(",")
    assert repos == [f"repo{i}" for i in range(MAX_REPOSITORIES + 2, 2, -1)]
    assert store.labels(missing) == {}
    assert mount_sources(store, "r", "x", [missing]) == {}
    store.close()
