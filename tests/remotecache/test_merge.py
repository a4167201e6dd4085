"""Merging the caches of a multi-node build's nodes into one (remotecache.merge)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildkit_py.content.store import ContentStore
from buildkit_py.exporter.manifest import Descriptor
from buildkit_py.remotecache.config import (
    CacheConfig,
    CacheFormatError,
    CacheInput,
    CacheLayer,
    CacheRecord,
    Checksum,
)
from buildkit_py.remotecache.export import Exported, cache_manifest, write_local
from buildkit_py.remotecache.merge import (
    PUSHED_KEY,
    merge,
    pushed,
    read_local,
    write_merged_local,
)

GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def _d(c: str) -> str:
    return "sha256:" + c * 64


def _part(layers: list[tuple[str, int]], records: list[CacheRecord], **kw: object
          ) -> Exported:
    cfg = CacheConfig(layers=[CacheLayer(_d(b), p, GZ, _d(b.upper() if b.isalpha() else b),
                                         10) for b, p in layers],
                      records=records, **kw)  # type: ignore[arg-type]
    return Exported(cfg, [Descriptor(GZ, _d(b), 10, annotations={"x": b}) for b, _ in layers])


def _chain_blobs(cfg: CacheConfig, digest: str) -> list[list[str]]:
    """The blob chain of every result record of ``digest``."""
    return [[cfg.layers[i].blob for i in cfg.chain(r.layer)] for r in cfg.records
            if r.digest == digest and r.layer is not None]


def test_two_nodes_merge_into_one_config_with_every_record() -> None:
    # node 1 (amd64): base a, RUN b on it, a copy layer c on scratch; ctx a key node
    amd = _part([("a", -1), ("b", 0), ("c", -1)], [
        CacheRecord("k:ctx", None, has_result=False),
        CacheRecord("k:from-amd", 0),
        CacheRecord("k:run-amd", 1, inputs=((CacheInput("", 1),), (CacheInput("/", 0),))),
        CacheRecord("k:copy", 2),
    ], empty=["k:empty"], checksums=[Checksum("k:ctx", ("/x",), "sha256:c1")],
        mounts={"pkgs": 2})
    # node 2 (arm64): base d, RUN e on it; the same copy layer c (kept once), and the same
    # blob b on another parent (kept twice: its chain differs); records listed before the
    # records their inputs link to
    arm = _part([("e", 1), ("d", -1), ("c", -1), ("b", 1)], [
        CacheRecord("k:run-arm", 0, inputs=((CacheInput("", 3),), (CacheInput("/", 2),))),
        CacheRecord("k:copy", 2),
        CacheRecord("k:ctx", None, has_result=False),
        CacheRecord("k:from-arm", 1),
        CacheRecord("k:odd", 3),
    ], empty=["k:empty", "k:empty2"],
        checksums=[Checksum("k:ctx", ("/x",), "sha256:c1"), Checksum("k:ctx", ("/y",), "s")],
        mounts={"pkgs": 1, "apt": 2})
    merged = merge([amd, arm])
    cfg = CacheConfig.from_bytes(merged.config.to_bytes())  # a valid config
    assert [layer.blob for layer in cfg.layers] == [_d(c) for c in "abcdeb"]
    assert [layer.parent for layer in cfg.layers] == [-1, 0, -1, -1, 3, 3]
    # one descriptor per config layer, the part's own (annotations kept)
    assert [d.digest for d in merged.layers] == [layer.blob for layer in cfg.layers]
    assert [d.annotations["x"] for d in merged.layers] == list("abcdeb")
    assert [r.digest for r in cfg.records] == [
        "k:ctx", "k:from-amd", "k:run-amd", "k:copy", "k:run-arm", "k:from-arm", "k:odd"]
    # every record keeps its result's blob chain and its inputs' keys
    for part in (amd, arm):
        for r in part.config.records:
            if r.layer is not None:
                assert [part.config.layers[i].blob for i in part.config.chain(r.layer)] \
                    in _chain_blobs(cfg, r.digest)
    by_key = {r.digest: r for r in cfg.records}
    for key in ("k:run-amd", "k:run-arm"):
        links = [[cfg.records[i.link].digest for i in alts] for alts in by_key[key].inputs]
        assert links == [[key.replace("run", "from")], ["k:ctx"]]
    assert cfg.empty == ["k:empty", "k:empty2"]
    assert cfg.checksums == [Checksum("k:ctx", ("/x",), "sha256:c1"),
                             Checksum("k:ctx", ("/y",), "s")]
    # a cache mount of both nodes keeps the first's layer
    assert cfg.mounts == {"pkgs": 2, "apt": 2}
    assert merged.config.ours


def test_one_part_is_itself_and_key_versions_must_agree() -> None:
    one = _part([("a", -1), ("b", 0)], [CacheRecord("k:1", 1)])
    assert merge([one]).config.to_bytes() == one.config.to_bytes()
    other = _part([("a", -1)], [CacheRecord("k:2", 0)], key_version="bkpy-keys-0")
    with pytest.raises(CacheFormatError, match="different bkpy versions"):
        merge([one, other])
    with pytest.raises(ValueError):
        merge([])


def test_pushed_reads_a_nodes_metadata() -> None:
    md = {PUSHED_KEY: [{"ref": "r/x:1", "descriptor": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _d("f"),
        "size": 3}}]}
    desc = pushed(md, "r/x:1")
    assert desc is not None and desc.digest == _d("f")
    assert pushed(md, "r/x:2") is None and pushed({}, "r/x:1") is None


def _layout_with_node_tags(tmp_path: Path) -> tuple[Path, list[Exported]]:
    """A local cache dir holding an unrelated tag and two nodes' parts under temporary
    tags (as the nodes' deliveries leave it)."""
    dest = tmp_path / "cache"
    parts = []
    with ContentStore(tmp_path / "store") as store:
        for tag, blobs in (("keep", "k"), ("t.node0", "ab"), ("t.node1", "cb")):
            data = [(c * 5).encode() for c in blobs]
            digests = [store.write(d) for d in data]
            layers = [CacheLayer(dg, i - 1, GZ, dg, len(d))
                      for i, (dg, d) in enumerate(zip(digests, data, strict=True))]
            part = Exported(CacheConfig(layers, [CacheRecord(f"k:{tag}", len(layers) - 1)]),
                            [Descriptor(GZ, dg, len(d)) for dg, d in
                             zip(digests, data, strict=True)])
            desc, _ = cache_manifest(part, store, image_manifest=True, oci=True)
            write_local(store, dest, tag, part, desc)
            parts.append(part)
    return dest, parts[1:]


def test_local_merge_writes_the_tag_and_drops_the_node_tags(tmp_path: Path) -> None:
    dest, parts = _layout_with_node_tags(tmp_path)
    node_manifests = {m["digest"] for m in json.loads((dest / "index.json").read_text())
                      ["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"]
                      .startswith("t.")}
    read = [read_local(dest, t) for t in ("t.node0", "t.node1")]
    assert [r.config.to_bytes() for r in read] == [p.config.to_bytes() for p in parts]
    desc = write_merged_local(dest, "latest", merge(read), ["t.node0", "t.node1"],
                              tmp_path / "work", image_manifest=True, oci=True)
    index = json.loads((dest / "index.json").read_text())
    tags = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
            for m in index["manifests"]}
    assert set(tags) == {"keep", "latest"} and tags["latest"] == desc.digest
    got = read_local(dest, "latest").config
    assert [r.digest for r in got.records] == ["k:t.node0", "k:t.node1"]
    assert len(got.layers) == 4  # b on a and b on c: two chains
    # the nodes' manifests and configs are gone, every layer blob stays
    blobs = {"sha256:" + p.name for p in (dest / "blobs" / "sha256").iterdir()}
    assert not node_manifests & blobs
    assert {layer.blob for layer in got.layers} <= blobs
    # the other tag is untouched and still readable
    assert [r.digest for r in read_local(dest, "keep").config.records] == ["k:keep"]
