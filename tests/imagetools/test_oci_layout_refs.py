"""``oci-layout://PATH[:TAG][@DIGEST]``: how the value is split and which image it names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildkit_py.errors import UsageError
from buildkit_py.frontend.dockerfile.convert.base_images import parse_oci_layout
from buildkit_py.source.image import oci_layout_root

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


@pytest.mark.parametrize("value, expected", [
    ("oci-layout:///srv/img", ("/srv/img", None, None)),
    ("oci-layout:///srv/img:v1", ("/srv/img", "v1", None)),
    (f"oci-layout:///srv/img@{D1}", ("/srv/img", None, D1)),
    (f"oci-layout:///srv/img:v1@{D1}", ("/srv/img", "v1", D1)),
    ("oci-layout://rel/dir", ("rel/dir", None, None)),
    ("oci-layout:///a:b/img", ("/a:b/img", None, None)),  # ':' before the last '/'
    ("oci-layout:///a@b/img", ("/a@b/img", None, None)),  # '@' not followed by a digest
])
def test_value_splits_into_path_tag_and_digest(value: str,
                                               expected: tuple[str, str | None, str | None]
                                               ) -> None:
    assert parse_oci_layout(value) == expected


@pytest.mark.parametrize("value", ["oci-layout://", "oci-layout:///srv/img:"])
def test_malformed_values_are_usage_errors(value: str) -> None:
    with pytest.raises(UsageError):
        parse_oci_layout(value)


def _layout(root: Path, entries: list[dict[str, object]]) -> Path:
    (root / "blobs" / "sha256").mkdir(parents=True)
    for d in (D1, D2):
        (root / "blobs" / "sha256" / d[7:]).write_bytes(b"{}")
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return root


def _entry(digest: str, **annotations: str) -> dict[str, object]:
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
            "size": 2, "annotations": annotations}


def test_tags_match_ref_name_or_containerd_name(tmp_path: Path) -> None:
    layout = _layout(tmp_path, [
        _entry(D1, **{"org.opencontainers.image.ref.name": "v1"}),
        _entry(D2, **{"io.containerd.image.name": "docker.io/library/app:v2"}),
    ])
    assert oci_layout_root(layout, "v1", None) == D1
    assert oci_layout_root(layout, "v2", None) == D2
    assert oci_layout_root(layout, "nope", D2) == D2  # a digest wins over the tag
    with pytest.raises(UsageError) as err:
        oci_layout_root(layout, None, None)  # "latest" is not there and there are two
    assert "no image tagged 'latest'" in err.value.message
    assert err.value.hint == "tags in the layout: v1"


def test_a_lone_untagged_image_is_taken_only_without_an_explicit_tag(tmp_path: Path) -> None:
    layout = _layout(tmp_path, [_entry(D1)])
    assert oci_layout_root(layout, None, None) == D1
    with pytest.raises(UsageError, match="no image tagged 'v1'"):
        oci_layout_root(layout, "v1", None)


def test_missing_layout_or_blob_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not an OCI image layout"):
        oci_layout_root(tmp_path / "nowhere", None, None)
    layout = _layout(tmp_path / "l", [_entry(D1)])
    with pytest.raises(UsageError, match="no blob"):
        oci_layout_root(layout, None, "sha256:" + "3" * 64)
