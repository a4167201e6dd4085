"""The cache config format: BuildKit's layout, bkpy's keys."""

from __future__ import annotations

import base64
import json

import pytest

from buildkit_py.errors import UsageError
from buildkit_py.remotecache.config import (
    CacheConfig,
    CacheFormatError,
    CacheLayer,
    CacheRecord,
    Checksum,
    inline_value,
    parse_inline,
)
from buildkit_py.remotecache.spec import export_spec, import_spec, parse_cache_arg

D = "sha256:" + "a" * 64
E = "sha256:" + "b" * 64


def _config() -> CacheConfig:
    return CacheConfig(
        layers=[CacheLayer(D, -1, "application/vnd.oci.image.layer.v1.tar+gzip", E, 10,
                           "2024-01-01T00:00:00Z"),
                CacheLayer(E, 0, diff_id=D)],
        records=[CacheRecord("sha256:k1", 0, "2024-01-01T00:00:00Z"),
                 CacheRecord("sha256:k2", 1)],
        empty=["sha256:k3"],
        checksums=[Checksum("sha256:k1", ("/b.txt",), "sha256:c")])


def test_round_trip() -> None:
    cfg = _config()
    back = CacheConfig.from_bytes(cfg.to_bytes())
    assert back.layers == cfg.layers
    assert [r.digest for r in back.records] == ["sha256:k1", "sha256:k2"]
    assert back.records[1].layer == 1 and back.chain(1) == [0, 1]
    assert back.checksums == cfg.checksums and back.empty == ["sha256:k3"]
    assert back.ours


def test_parent_zero_is_omitted_and_base_is_minus_one() -> None:
    doc = _config().to_json()
    assert doc["layers"][0]["parent"] == -1
    assert "parent" not in doc["layers"][1]  # Go's omitempty: absent means 0
    assert doc["layers"][0]["annotations"]["diffID"] == E
    assert doc["records"][0]["layers"] == [{"layer": 0, "createdAt": "2024-01-01T00:00:00Z"}]


def test_a_buildkit_config_is_foreign_and_bad_ones_are_refused() -> None:
    foreign = CacheConfig.from_json({"layers": [{"blob": D, "parent": -1}],
                                     "records": [{"digest": "sha256:x",
                                                  "layers": [{"layer": 0}]}]})
    assert not foreign.ours
    with pytest.raises(CacheFormatError):
        CacheConfig.from_bytes(b"{not json")
    with pytest.raises(CacheFormatError):
        CacheConfig.from_json({"layers": [{"blob": D, "parent": 5}]})
    with pytest.raises(CacheFormatError):
        CacheConfig.from_json({"records": [{"digest": "sha256:x", "layers": [{"layer": 3}]}]})


def test_inline_encoding() -> None:
    value = inline_value(_config())
    doc = json.loads(base64.b64decode(value))
    assert "layers" not in doc and doc["records"][0]["digest"] == "sha256:k1"
    image_layers = [CacheLayer(D, -1, diff_id=E), CacheLayer(E, 0, diff_id=D)]
    back = parse_inline(value, image_layers)
    assert back.layers == image_layers and back.ours
    # BuildKit's own inline value: the records array alone
    theirs = base64.b64encode(json.dumps([{"digest": "sha256:x", "layers": [{"layer": 1}]}])
                              .encode()).decode()
    assert not parse_inline(theirs, image_layers).ours


def test_specs() -> None:
    assert parse_cache_arg("reg/repo:tag", "--cache-from") == {"type": "registry",
                                                               "ref": "reg/repo:tag"}
    spec = export_spec(parse_cache_arg("type=registry,ref=r/x,mode=max", "--cache-to"))
    assert spec.mode == "max" and spec.image_manifest and spec.oci and not spec.ignore_error
    for bad in ("type=registry,ref=r/x,colour=red", "type=s3", "type=registry",
                "type=local", "type=inline,mode=max", "type=registry,ref=r,mode=all",
                "type=registry,ref=r,compression=lz4", "ref=r/x",
                "type=registry,ref=r,oci-mediatypes=false"):
        with pytest.raises(UsageError):
            export_spec(parse_cache_arg(bad, "--cache-to"))
    assert import_spec({"type": "local", "src": "d", "tag": "t"}).where == "d"
    with pytest.raises(UsageError):
        import_spec({"type": "inline"})
