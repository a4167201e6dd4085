"""The recording and comparison machinery itself: identical base images for both builders,
layer application with whiteouts, the comparison rules and the corpus' well-formedness."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.golden.cases import CASES_DIR, all_cases
from tests.golden.docker_base import write_busybox_docker_tar
from tests.golden.expectations import CONFIG_KEYS, compare, normalise_created_by, record
from tests.golden.image_archive import ImageArchive, read_docker_archive, read_oci_archive
from tests.golden.rootfs import apply_layers, describe
from tests.images import write_busybox_layout

REPO = Path(__file__).resolve().parents[2]


def _layer(*entries: tuple[str, str, bytes | str]) -> bytes:
    """A layer tar from (kind, name, data-or-linkname) triples; kind is file, dir or symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for kind, name, payload in entries:
            ti = tarfile.TarInfo(name)
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(payload)
                tf.addfile(ti)
            else:
                data = payload if isinstance(payload, bytes) else payload.encode()
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_docker_base_tar_holds_the_same_image_as_the_oci_layout(tmp_path: Path) -> None:
    docker = read_docker_archive(write_busybox_docker_tar(tmp_path / "bb.tar"))
    oci = read_oci_archive(write_busybox_layout(tmp_path / "layout"))
    assert docker.config == oci.config
    assert docker.layers == oci.layers


def test_whiteouts_remove_lower_entries_and_opaque_dirs_hide_lower_children() -> None:
    base = _layer(("dir", "d", b""), ("file", "d/old", "1"), ("file", "gone", "2"),
                  ("dir", "keep", b""), ("file", "keep/x", "3"))
    top = _layer(("file", ".wh.gone", b""), ("dir", "d", b""), ("file", "d/.wh..wh..opq", b""),
                 ("file", "d/new", "4"), ("symlink", "keep/x", "/elsewhere"))
    tree = apply_layers([base, top])
    assert describe(tree, "/gone") is None
    assert describe(tree, "/d/old") is None
    assert describe(tree, "/d/new") == {"type": "file", "mode": "0644", "uid": 0, "gid": 0,
                                         "size": 1, "sha256": hashlib.sha256(b"4").hexdigest()}
    assert describe(tree, "/keep/x") == {"type": "symlink", "mode": "0644", "uid": 0, "gid": 0,
                                          "target": "/elsewhere"}


def test_a_directory_replaced_by_a_file_loses_its_children() -> None:
    tree = apply_layers([_layer(("dir", "a", b""), ("file", "a/b", "x")),
                         _layer(("file", "a", "now a file"))])
    assert describe(tree, "/a/b") is None
    assert describe(tree, "/a")["type"] == "file"  # type: ignore[index]


def _recorded(**config: Any) -> dict[str, Any]:
    image = ImageArchive({"config": config, "history": [
        {"created_by": "RUN /bin/sh -c true # buildkit"},
        {"created_by": "ENV A=1", "empty_layer": True}]}, [_layer(("file", "f", "x"))])
    return record(image, ["/f", "/missing"])


def test_comparison_reports_every_differing_field() -> None:
    want = _recorded(Env=["A=1"], Cmd=["sh"])
    got = _recorded(Env=["A=2"], Cmd=None, WorkingDir="")
    got["history"][1]["empty_layer"] = False
    got["layers"] = 2
    got["files"]["/f"]["mode"] = "0600"
    got["files"]["/missing"] = {"type": "dir", "mode": "0755", "uid": 0, "gid": 0}
    assert compare(want, got) == [
        "config.Env: expected ['A=1'], got ['A=2']",
        "config.Cmd: expected ['sh'], got None",
        "history[1].empty_layer ('ENV A=1'): expected True, got False",
        "layers: expected 1, got 2",
        "files[/f].mode: expected '0644', got '0600'",
        "files[/missing]: expected None, got {'type': 'dir', 'mode': '0755', 'uid': 0, "
        "'gid': 0}",
    ]
    assert compare(want, want) == []


@pytest.mark.parametrize(("recorded", "produced"), [
    ("RUN /bin/sh -c echo a\n b # buildkit", "RUN /bin/sh -c echo a b"),
    ("COPY a /b # buildkit", "COPY --chown=app --chmod=600 a /b # buildkit"),
    ("ARG VERSION=1.2", "ARG VERSION=3.4"),
    ("EXPOSE map[443/tcp:{} 80/tcp:{}]", "EXPOSE [80/tcp 443/tcp]"),
    ('HEALTHCHECK &{["CMD" "/bin/true"] "0s" "0s" "0s" \'\\x00\'}',
     'HEALTHCHECK &{["CMD" "/bin/true"] "0s" "0s" "0s" "0s" \'\\x00\'}'),
])
def test_created_by_forms_that_differ_only_by_buildkit_version_compare_equal(
        recorded: str, produced: str) -> None:
    assert normalise_created_by(recorded) == normalise_created_by(produced)


@pytest.mark.parametrize(("recorded", "produced"), [
    ("RUN /bin/sh -c echo a # buildkit", "RUN /bin/sh -c echo b # buildkit"),
    ("COPY a /b # buildkit", "COPY a /c # buildkit"),
    ("ARG A=1", "ARG B=1"),
    ("EXPOSE map[80/tcp:{}]", "EXPOSE [80/udp]"),
    ("WORKDIR /a", "WORKDIR /b"),
])
def test_created_by_with_different_content_stays_different(recorded: str, produced: str) -> None:
    assert normalise_created_by(recorded) != normalise_created_by(produced)


def test_every_case_is_complete_and_checks_what_it_lists() -> None:
    cases = all_cases()
    assert len(cases) >= 20
    for case in cases:
        doc = case.expected()
        assert (case.path / "context").is_dir(), case.name
        assert set(doc["config"]) == set(CONFIG_KEYS), case.name
        assert list(doc["files"]) == doc["check_paths"], case.name
        assert doc["source"] == "reference" or doc["source"].startswith("buildkit-"), case.name
        # reference 1.12: one layer per non-empty history entry (the base's included)
        assert doc["layers"] == sum(not h["empty_layer"] for h in doc["history"]), case.name
        if doc["source"] == "reference":
            assert doc.get("notes"), f"{case.name}: say why it is written by hand"


def test_recorder_refuses_to_run_without_dockerd() -> None:
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "record-buildkit-golden.py"),
                        "--docker", str(CASES_DIR / "no-such-docker")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "needs a running Docker daemon" in p.stderr
    assert "Traceback" not in p.stderr
    assert json.loads((CASES_DIR / "copy-chown" / "expected.json").read_text())["layers"] == 7
