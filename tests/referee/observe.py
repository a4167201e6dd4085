"""What a build of a case is judged on, and the comparison of two such observations.

An observation is a JSON document:

- ``exit``: the builder's exit status;
- failed builds: ``error``, BuildKit's message (the last ``ERROR:`` line, without the CLI's
  ``ERROR:`` / ``failed to build:`` prefixes); BuildKit names a cache ref by random IDs
  (``checksum of ref ID::ID:``), a new pair per build, so any ref name reads ``REF``;
- succeeded builds: ``platforms``, for each platform built:
  - ``config``: the image config, minus every ``created`` time and, unless the case sets
    ``SOURCE_DATE_EPOCH``, minus ``rootfs.diff_ids`` (they hash file times);
  - ``files``: the final filesystem, one line per path: ``PATH TYPE MODE UID:GID`` then
    ``SIZE SHA256`` for files or ``-> TARGET`` for symlinks. On the busybox base, entries equal
    to the base's are left out and base paths that are gone are listed as ``- PATH``;
  - with ``SOURCE_DATE_EPOCH``: ``image_id`` (the config digest) and ``diff_ids``.

Every field is compared exactly; there is no normalisation beyond what is listed above.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tests.images import busybox_layer
from tests.referee.image_archive import read_oci_archive
from tests.referee.rootfs import Entry, apply_layers

_ERROR_PREFIXES = ("ERROR: ", "failed to build: ")
_REF_NAME = re.compile(r"(checksum of ref )\S+:( )")


def error_message(stderr: str) -> str:
    """The builder's final error message, as BuildKit words it."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("ERROR: ")]
    if not lines:
        return ""
    msg = lines[-1]
    for prefix in _ERROR_PREFIXES:
        msg = msg.removeprefix(prefix)
    return _REF_NAME.sub(r"\1REF:\2", msg)


def _line(path: str, e: Entry) -> str:
    head = f"{path} {e.type} {e.mode & 0o7777:04o} {e.uid}:{e.gid}"
    if e.type == "file":
        return f"{head} {e.size} {e.sha256}"
    if e.type == "symlink":
        return f"{head} -> {e.target}"
    return head


_BASE_TREES: dict[str, dict[str, Entry]] = {}


def _base_tree(arch: str) -> dict[str, Entry]:
    if arch not in _BASE_TREES:
        _BASE_TREES[arch] = apply_layers([busybox_layer(arch)])
    return _BASE_TREES[arch]


def listing(layers: list[bytes], arch: str) -> list[str]:
    tree = apply_layers(layers)
    base = _base_tree(arch)
    on_base = bool(layers) and apply_layers(layers[:1]) == base
    if not on_base:
        return [_line(p, e) for p, e in sorted(tree.items())]
    out = [_line(p, e) for p, e in sorted(tree.items()) if base.get(p) != e]
    out += [f"- {p}" for p in sorted(base) if p not in tree]
    return sorted(out, key=lambda s: s.removeprefix("- "))


def _strip_times(config: dict[str, Any], keep_diff_ids: bool) -> dict[str, Any]:
    doc = {k: v for k, v in config.items() if k != "created"}
    doc["history"] = [{k: v for k, v in h.items() if k != "created"}
                      for h in config.get("history") or []]
    if not keep_diff_ids and isinstance(doc.get("rootfs"), dict):
        rootfs = dict(doc["rootfs"])
        rootfs["diff_ids"] = len(rootfs.get("diff_ids") or [])
        doc["rootfs"] = rootfs
    return doc


def observe(exit_code: int, stderr: str, output: Path, platforms: list[str],
            with_ids: bool) -> dict[str, Any]:
    if exit_code != 0:
        return {"exit": exit_code, "error": error_message(stderr)}
    result: dict[str, Any] = {"exit": 0, "platforms": {}}
    for platform in platforms:
        arch = platform.split("/")[1]
        image = read_oci_archive(output, arch)
        entry: dict[str, Any] = {"config": _strip_times(image.config, with_ids),
                                 "files": listing(image.layers, arch)}
        if with_ids:
            entry["image_id"] = "sha256:" + hashlib.sha256(image.config_bytes).hexdigest()
            entry["diff_ids"] = ["sha256:" + hashlib.sha256(b).hexdigest()
                                 for b in image.layers]
        result["platforms"][platform] = entry
    return result


def _diff_values(path: str, want: Any, got: Any, out: list[str]) -> None:
    if isinstance(want, dict) and isinstance(got, dict):
        for key in sorted(set(want) | set(got)):
            if key not in got:
                out.append(f"{path}.{key}: missing (expected {json.dumps(want[key])})")
            elif key not in want:
                out.append(f"{path}.{key}: unexpected {json.dumps(got[key])}")
            else:
                _diff_values(f"{path}.{key}", want[key], got[key], out)
    elif (isinstance(want, list) and isinstance(got, list) and len(want) == len(got)
          and not path.endswith(".files")):
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            _diff_values(f"{path}[{i}]", w, g, out)
    elif path.endswith(".files") and isinstance(want, list) and isinstance(got, list):
        out += [f"{path}: missing   {ln}" for ln in want if ln not in got]
        out += [f"{path}: unexpected {ln}" for ln in got if ln not in want]
    elif want != got:
        out.append(f"{path}: expected {json.dumps(want)}, got {json.dumps(got)}")


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Every difference, one line each; empty when the observations agree."""
    out: list[str] = []
    _diff_values("", expected, actual, out)
    return [re.sub(r"^\.", "", ln) for ln in out]
