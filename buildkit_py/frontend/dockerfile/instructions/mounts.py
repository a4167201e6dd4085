"""``RUN --mount=<csv>``: the five mount types and their keys (bind, cache, tmpfs, secret, ssh).

A mount is read in two steps, as in BuildKit: when the Dockerfile is loaded, the CSV is
split and ``from`` checked not to use ``$``; :meth:`MountSpec.resolve` then expands the
values (the converter passes its ARG/ENV expander) and checks everything else (type, key
names, bare words, octal mode, numbers, sizes, ...), so those errors are worded as
BuildKit's conversion errors (without "dockerfile parse error on line N").
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from buildkit_py.frontend.dockerfile.suggest import suggest
from buildkit_py.gostrings import go_quote
from buildkit_py.units import ram_in_bytes

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_ALL_KEYS = (
    "type", "from", "source", "target", "readonly", "id", "sharing", "required", "size",
    "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite", "env",
)
GO_BOOLS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}


class MountError(ValueError):
    """A malformed ``--mount`` value."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Mount:
    """A fully resolved mount (values expanded and validated)."""

    type: str
    target: str = ""
    source: str = ""
    from_: str = ""
    id: str = ""
    read_only: bool = False
    sharing: str = ""  # cache only; "" means the default, "shared"
    required: bool = False  # secret/ssh only
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None  # tmpfs size limit in bytes
    env: str | None = None  # secret exposed as this environment variable

    @property
    def secret_id(self) -> str:
        """The secret's id: ``id``, else ``source``, else the basename of ``target``."""
        return self.id or self.source or posixpath.basename(self.target)

    @property
    def ssh_id(self) -> str:
        return self.id or "default"


@dataclass(frozen=True)
class MountSpec:
    """One ``--mount`` flag as written, split into (lower-case key, value or None)."""

    raw: str
    type: str
    fields: tuple[tuple[str, str | None], ...]

    def resolve(self, expand: Callable[[str], str] | None = None) -> Mount:
        """Expand the values with ``expand`` (identity when None) and validate them."""
        return _resolve(self, expand or (lambda s: s))

    @property
    def needs_expansion(self) -> bool:
        return any(v is not None and "$" in v for _, v in self.fields)


def parse_mount(raw: str) -> MountSpec:
    """Split and pre-validate a ``--mount`` value (no variable expansion yet): as in
    BuildKit, only the CSV syntax and ``from`` are checked here, the rest by ``resolve``."""
    try:
        row = split_csv(raw)
    except ValueError as err:
        raise MountError(f"failed to parse csv mounts: {err}") from None
    fields: list[tuple[str, str | None]] = []
    mount_type = "bind"
    for field in row:
        key, eq, value = field.partition("=")
        key = key.lower()
        fields.append((key, value if eq else None))
        if eq and key == "type":
            mount_type = value.lower()
        if eq and key == "from":
            idx = value.find("$")
            if idx != -1 and idx != len(value) - 1:
                raise MountError(
                    "'from' doesn't support variable expansion, define alias stage instead"
                )
    return MountSpec(raw=raw, type=mount_type, fields=tuple(fields))


def split_csv(line: str) -> list[str]:
    """One record of Go's ``encoding/csv`` (strict quotes): ``a,"b,c",d`` -> 3 fields."""
    if not line:
        raise ValueError("EOF")
    fields: list[str] = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            out = []
            i += 1
            while True:
                j = line.find('"', i)
                if j < 0:
                    raise ValueError('extraneous or missing " in quoted-field')
                out.append(line[i:j])
                i = j + 1
                if i < n and line[i] == '"':
                    out.append('"')
                    i += 1
                    continue
                if i < n and line[i] != ",":
                    raise ValueError('extraneous or missing " in quoted-field')
                break
            fields.append("".join(out))
        else:
            j = line.find(",", i)
            field = line[i:] if j < 0 else line[i:j]
            if '"' in field:
                raise ValueError('bare " in non-quoted field')
            fields.append(field)
            i = n if j < 0 else j
        if i >= n:
            return fields
        i += 1  # skip the comma
        if i == n:
            fields.append("")
            return fields


def _bool(key: str, value: str) -> bool:
    parsed = GO_BOOLS.get(value)
    if parsed is None:
        raise MountError(f"invalid value for {key}: {value}")
    return parsed


def _uint(key: str, value: str, base: int) -> int:
    try:
        number = int(value, base)
    except ValueError:
        raise MountError(f"invalid value {value} for {key}") from None
    if not 0 <= number < 1 << 32 or value.startswith(("+", "-")):
        raise MountError(f"invalid value {value} for {key}")
    return number


def _resolve(spec: MountSpec, expand: Callable[[str], str]) -> Mount:
    mtype = spec.type
    values: dict[str, object] = {}
    read_only: bool | None = None
    for (key, raw), field in zip(spec.fields, split_csv(spec.raw), strict=True):
        if raw is None:
            if key in ("readonly", "ro"):
                read_only = True
            elif key in ("readwrite", "rw"):
                read_only = False
            elif key == "required" and mtype in ("secret", "ssh"):
                values["required"] = True
            elif key == "required":
                raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
            else:
                raise MountError(f"invalid field '{field}' must be a key=value pair")
            continue
        value = raw if key == "from" else expand(raw)
        if key == "type":
            if value.lower() not in MOUNT_TYPES:
                raise MountError(
                    suggest(f"unsupported mount type {go_quote(value)}", value, MOUNT_TYPES,
                            case_sensitive=True),
                    f"use one of {', '.join(MOUNT_TYPES)}")
            continue
        if key not in _ALL_KEYS:
            raise MountError(suggest(f"unexpected key '{key}' in '{field}'", key, _ALL_KEYS,
                                     case_sensitive=True))
        if key == "from":
            values["from_"] = value
        elif key in ("source", "src"):
            values["source"] = value
        elif key in ("target", "dst", "destination"):
            values["target"] = value
        elif key in ("readonly", "ro"):
            read_only = _bool(key, value)
        elif key in ("readwrite", "rw"):
            read_only = not _bool(key, value)
        elif key == "required":
            if mtype not in ("secret", "ssh"):
                raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
            values["required"] = _bool(key, value)
        elif key == "size":
            if mtype != "tmpfs":
                raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
            try:
                values["size"] = ram_in_bytes(value)
            except ValueError:
                raise MountError(f"invalid value for {key}: {value}") from None
        elif key == "id":
            values["id"] = value
        elif key == "sharing":
            if mtype != "cache":
                raise MountError(f"invalid cache sharing set for {mtype} mount")
            sharing = value.lower()
            if sharing not in SHARING_MODES:
                raise MountError(suggest(f"unsupported sharing value {go_quote(value)}", value,
                                         SHARING_MODES, case_sensitive=True))
            values["sharing"] = sharing
        elif key == "mode":
            values["mode"] = _uint(key, value, 8)
        elif key in ("uid", "gid"):
            values[key] = _uint(key, value, 10)
        elif key == "env":
            if mtype != "secret":
                raise MountError(f"unexpected key '{key}' for mount type '{mtype}'")
            values["env"] = value
    if mtype not in ("secret", "ssh", "cache"):
        for key in ("mode", "uid", "gid"):
            if key in values:
                raise MountError(f"{key} not allowed for {go_quote(mtype)} type mounts")
    if read_only is None:
        read_only = mtype not in ("cache", "tmpfs")
    mount = Mount(type=mtype, read_only=read_only, **values)  # type: ignore[arg-type]
    if mtype == "secret":
        if mount.from_:
            raise MountError("secret mount should not have a from")
        if not (mount.source or mount.target or mount.id):
            raise MountError("invalid secret mount. one of source, target required")
        if mount.source and mount.id:
            raise MountError("both source and id can't be set")
    if mount.target == "/":
        raise MountError('invalid mount target "/"')
    return mount
