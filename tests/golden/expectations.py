"""What a case records about an image, and the field-by-field comparison of two records.

Comparison rules (the only normalisation applied):
- config values that are missing, null, "", [] or {} all mean "unset" and compare equal;
  Healthcheck fields equal to zero are dropped (Go omits them; zero means "runtime default").
- history ``created_by`` is compared in a canonical form (reference 1.12: the exact text is
  not required). Always: trimmed, runs of whitespace collapsed to one space, the trailing
  ``# buildkit`` marker removed. And where the recording BuildKit (v0.8) and current BuildKit
  print the same facts differently (the facts themselves are checked exactly in ``config``):
  ``COPY``/``ADD`` drop ``--chown=``/``--chmod=`` words (v0.8 omits them); ``ARG`` keeps only
  the names (v0.8 prints the default, current BuildKit the effective value); ``EXPOSE`` keeps
  the sorted ports (v0.8 prints a Go map, current BuildKit a list); ``HEALTHCHECK`` keeps only
  the test command (the Go struct dump grew a field).
- everything else (empty_layer flags, history length, layer count, file type, mode, uid, gid,
  size, sha256, symlink target, absence) must match exactly.
"""

from __future__ import annotations

import re
from typing import Any

from tests.golden.image_archive import ImageArchive
from tests.golden.rootfs import apply_layers, describe

CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts",
               "Volumes", "StopSignal", "Healthcheck", "Shell", "OnBuild")
_BUILDKIT_MARKER = re.compile(r"\s*#\s*buildkit\s*$")
_COPY_FLAG = re.compile(r"^--ch(own|mod)=")
_PORT = re.compile(r"\d+(?:-\d+)?/[a-z]+")
_HEALTH_TEST = re.compile(r"^&\{(\[.*\])\s\"")


def _unset(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def normalise_config_value(key: str, value: Any) -> Any:
    if key == "Healthcheck" and isinstance(value, dict):
        value = {k: v for k, v in value.items() if not _unset(v) and v != 0}
    return None if _unset(value) else value


def normalise_created_by(text: str) -> str:
    words = _BUILDKIT_MARKER.sub("", text).split()
    if not words:
        return ""
    keyword, rest = words[0], words[1:]
    if keyword in ("COPY", "ADD"):
        rest = [w for w in rest if not _COPY_FLAG.match(w)]
    elif keyword == "ARG":
        rest = [w.split("=", 1)[0] for w in rest]
    elif keyword == "EXPOSE":
        rest = sorted(_PORT.findall(" ".join(rest)))
    elif keyword == "HEALTHCHECK":
        test = _HEALTH_TEST.match(" ".join(rest))
        rest = [test.group(1)] if test else rest
    return " ".join([keyword, *rest])


def record(image: ImageArchive, check_paths: list[str]) -> dict[str, Any]:
    """The recorded fields of one built image (see the module doc for what they mean)."""
    cfg = image.config.get("config") or {}
    tree = apply_layers(image.layers)
    return {
        "config": {key: normalise_config_value(key, cfg.get(key)) for key in CONFIG_KEYS},
        "history": [{"created_by": h.get("created_by", ""),
                     "empty_layer": bool(h.get("empty_layer", False))}
                    for h in image.config.get("history") or []],
        "layers": len(image.layers),
        "files": {path: describe(tree, path) for path in check_paths},
    }


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Every difference between an expected and an actual record, one line per field."""
    out: list[str] = []
    for key in CONFIG_KEYS:
        want = normalise_config_value(key, expected["config"].get(key))
        got = normalise_config_value(key, actual["config"].get(key))
        if want != got:
            out.append(f"config.{key}: expected {want!r}, got {got!r}")
    want_h, got_h = expected["history"], actual["history"]
    if len(want_h) != len(got_h):
        out.append(f"history: expected {len(want_h)} entries, got {len(got_h)}: "
                   f"{[h['created_by'] for h in got_h]!r}")
    for i, (w, g) in enumerate(zip(want_h, got_h, strict=False)):
        if normalise_created_by(w["created_by"]) != normalise_created_by(g["created_by"]):
            out.append(f"history[{i}].created_by: expected {w['created_by']!r}, "
                       f"got {g['created_by']!r}")
        if w["empty_layer"] != g["empty_layer"]:
            out.append(f"history[{i}].empty_layer ({w['created_by']!r}): expected "
                       f"{w['empty_layer']}, got {g['empty_layer']}")
    if expected["layers"] != actual["layers"]:
        out.append(f"layers: expected {expected['layers']}, got {actual['layers']}")
    for path, want_f in expected["files"].items():
        got_f = actual["files"].get(path)
        if want_f is None or got_f is None:
            if want_f != got_f:
                out.append(f"files[{path}]: expected {want_f!r}, got {got_f!r}")
            continue
        for field in sorted(set(want_f) | set(got_f)):
            if want_f.get(field) != got_f.get(field):
                out.append(f"files[{path}].{field}: expected {want_f.get(field)!r}, "
                           f"got {got_f.get(field)!r}")
    return out
