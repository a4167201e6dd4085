"""What changed in an op since the step last ran: the ``change_summary`` and
``describe_change`` hooks (``ExplainsMisses`` in ``solver/worker.py``) of the exec, file
and image handlers.

A summary is small JSON remembered with the step: names and structure in clear, values
that may be secret (env values, commands, mount options) only as short hashes. Comparing
it with the op at hand names what differs ("command changed", "build arg VERSION
changed", "mount /cache changed", "platform linux/amd64 -> linux/arm64"); the solver
prints a generic line when nothing here can tell.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.metadata import BUILD_ARGS

_NAMED = 3  # items named before "and N more"


def _h(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:12]


def platform_text(op: ops_pb2.Op) -> str:
    p = op.platform
    if not p.architecture:
        return ""
    return "/".join(x for x in (p.os or "linux", p.architecture, p.variant) if x)


def _load(text: str) -> dict[str, Any] | None:
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_NAMED])
    return shown + (f" and {len(items) - _NAMED} more" if len(items) > _NAMED else "")


def _platform_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    if old.get("platform", "") != new.get("platform", ""):
        return f"platform {old.get('platform') or 'default'} -> {new.get('platform') or 'default'}"
    return None


# exec --------------------------------------------------------------------------


def exec_summary(op: ops_pb2.Op, description: Mapping[str, str]) -> dict[str, Any]:
    meta = op.exec.meta
    env: dict[str, str] = {}
    for entry in meta.env:
        name, _, value = entry.partition("=")
        env[name] = _h(value)
    mounts: dict[str, str] = {}
    for m in op.exec.mounts:
        stripped = ops_pb2.Mount()
        stripped.CopyFrom(m)
        stripped.selector = ""  # selectors enter the key through the input, not the op
        mounts[m.dest] = _h(stripped.SerializeToString(deterministic=True))
    rest = ops_pb2.ExecOp()
    rest.CopyFrom(op.exec)
    rest.ClearField("mounts")
    rest.meta.ClearField("args")
    rest.meta.ClearField("env")
    rest.meta.ClearField("proxy_env")
    args = [a for a in description.get(BUILD_ARGS, "").split(",") if a]
    return {
        "kind": "exec", "platform": platform_text(op), "args": _h(json.dumps(list(meta.args))),
        "env": env, "build_args": args, "mounts": mounts, "cwd": _h(meta.cwd),
        "user": _h(meta.user), "network": int(op.exec.network),
        "security": int(op.exec.security),
        "rest": _h(rest.SerializeToString(deterministic=True)),
    }


def describe_exec_change(op: ops_pb2.Op, description: Mapping[str, str],
                         old_text: str) -> str | None:
    old = _load(old_text)
    if old is None or old.get("kind") != "exec":
        return None
    new = exec_summary(op, description)
    parts: list[str] = []
    if (plat := _platform_change(old, new)) is not None:
        parts.append(plat)
    if old.get("args") != new["args"]:
        parts.append("command changed")
    args = set(new["build_args"]) | set(old.get("build_args") or ())
    before, after = old.get("env") or {}, new["env"]
    for label, names in (("build arg", [n for n in after if n in args]),
                         ("env", [n for n in after if n not in args])):
        changed = [n for n in names if before.get(n) != after[n]]
        if changed:
            plural = "s" if len(changed) > 1 else ""
            added = [n for n in changed if n not in before]
            what = "set" if added == changed else "changed"
            parts.append(f"{label}{plural} {_names(changed)} {what}")
    gone = [n for n in before if n not in after]
    if gone:
        parts.append(f"env {_names(gone)} removed")
    mb, ma = old.get("mounts") or {}, new["mounts"]
    moved = [d for d in ma if mb.get(d) != ma[d]] + [d for d in mb if d not in ma]
    if moved:
        parts.append(f"mount{'s' if len(moved) > 1 else ''} {_names(moved)} changed")
    for field, text in (("cwd", "working directory changed"), ("user", "user changed"),
                        ("network", "network mode changed"),
                        ("security", "security mode changed")):
        if old.get(field) != new[field]:
            parts.append(text)
    if not parts and old.get("rest") != new["rest"]:
        parts.append("run options changed")
    return ", ".join(parts) or None


# file --------------------------------------------------------------------------


def _action(a: ops_pb2.FileAction) -> dict[str, Any]:
    kind = a.WhichOneof("action") or ""
    body = getattr(a, kind) if kind else None
    out: dict[str, Any] = {"kind": kind, "all": _h(a.SerializeToString(deterministic=True))}
    if isinstance(body, ops_pb2.FileActionCopy):
        out.update(src=body.src, dest=body.dest)
    elif body is not None and hasattr(body, "path"):
        out["path"] = body.path
    return out


def file_summary(op: ops_pb2.Op) -> dict[str, Any]:
    return {"kind": "file", "platform": platform_text(op),
            "actions": [_action(a) for a in op.file.actions]}


def describe_file_change(op: ops_pb2.Op, old_text: str) -> str | None:
    old = _load(old_text)
    if old is None or old.get("kind") != "file":
        return None
    new = file_summary(op)
    parts: list[str] = []
    if (plat := _platform_change(old, new)) is not None:
        parts.append(plat)
    before, after = old.get("actions") or [], new["actions"]
    if len(before) != len(after):
        parts.append("file actions changed")
    else:
        for was, now in zip(before, after, strict=True):
            if was == now:
                continue
            if was.get("kind") == now["kind"] == "copy":
                if was.get("src") != now["src"]:
                    parts.append(f"copy source {was.get('src')} -> {now['src']}")
                elif was.get("dest") != now["dest"]:
                    parts.append(f"copy destination {was.get('dest')} -> {now['dest']}")
                else:
                    parts.append("copy options changed")
            else:
                parts.append(f"{now['kind'] or 'file'} action changed")
    return ", ".join(dict.fromkeys(parts)) or None


# image -------------------------------------------------------------------------


def image_summary(ref: str, digest: str, platform: str | None) -> dict[str, Any]:
    return {"kind": "image", "ref": ref.split("@", 1)[0], "digest": digest,
            "platform": platform or ""}


def describe_image_change(new: dict[str, Any], old_text: str) -> str | None:
    old = _load(old_text)
    if old is None or old.get("kind") != "image":
        return None
    parts: list[str] = []
    if (plat := _platform_change(old, new)) is not None:
        parts.append(plat)
    if old.get("ref") != new["ref"]:
        parts.append(f"base image {old.get('ref')} -> {new['ref']}")
    elif old.get("digest") != new["digest"]:
        parts.append(f"base image {new['ref']} digest {_short(old.get('digest'))} -> "
                     f"{_short(new['digest'])}")
    return ", ".join(parts) or None


def _short(digest: object) -> str:
    text = str(digest or "?")
    algo, _, hexpart = text.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else text
