"""OCI annotations asked for with ``--annotation`` and ``-o ...,annotation*.KEY=VALUE``.

An output's annotations travel as exporter attributes named as BuildKit names them:
``annotation.KEY`` (the manifest), ``annotation-index.KEY``,
``annotation-index-descriptor.KEY``, ``annotation-manifest.KEY`` and
``annotation-manifest-descriptor.KEY``; the two manifest kinds may name a platform,
``annotation-manifest[linux/arm64].KEY``. ``--annotation`` (buildx's flag) is turned into
those attributes on every output. Where each kind lands: the manifest's and the index's
own ``annotations``; a manifest descriptor's (in the index, or in ``index.json`` and the
metadata when single-platform); the index's descriptor (``index.json``, the metadata).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from buildkit_py.errors import SolveError, UsageError, UserError
from buildkit_py.platforms import parse_platform

INDEX = "index"
INDEX_DESCRIPTOR = "index-descriptor"
MANIFEST = "manifest"
MANIFEST_DESCRIPTOR = "manifest-descriptor"
TYPES = (INDEX, INDEX_DESCRIPTOR, MANIFEST, MANIFEST_DESCRIPTOR)

# BuildKit's exporter attribute grammar: annotation[-TYPE][[PLATFORM]].KEY
_ATTR = re.compile(r"^annotation(?:-([a-z-]+))?(?:\[([A-Za-z0-9_/-]+)\])?\.(\S+)$")
# buildx's flag grammar before the colon: TYPE[[PLATFORM]]
_FLAG_TYPE = re.compile(r"^([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?$")


@dataclass(frozen=True)
class AnnotationKey:
    type: str       # one of TYPES ("" in a flag: the manifest)
    platform: str   # normalised platform ("" for every platform)
    key: str

    def attr(self) -> str:
        """The exporter attribute that carries it (BuildKit's spelling)."""
        prefix = "annotation"
        if self.type:
            prefix += f"-{self.type}"
            if self.platform and self.type in (MANIFEST, MANIFEST_DESCRIPTOR):
                prefix += f"[{self.platform}]"
        return f"{prefix}.{self.key}"


def is_annotation_attr(name: str) -> bool:
    return name.startswith("annotation")


def _platform(value: str, err: str) -> str:
    try:
        return str(parse_platform(value))
    except (UsageError, ValueError) as exc:
        raise UsageError(f"{err}: {exc}") from None


def parse_attr(name: str) -> AnnotationKey | None:
    """The annotation exporter attribute ``name`` asks for (None: not one), with
    BuildKit's error for an unknown kind."""
    m = _ATTR.match(name)
    if m is None:
        return None
    typ, platform, key = m.groups()
    typ = typ or MANIFEST
    if typ not in TYPES:
        raise UsageError(f"unrecognized annotation type {typ}",
                         hint=f"annotation kinds: {', '.join(TYPES)}")
    return AnnotationKey(typ, _platform(platform, f"invalid platform {platform!r}")
                         if platform else "", key)


def parse_flags(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``--annotation`` values (``KEY=VALUE``, ``TYPE[,TYPE...]:KEY=VALUE``,
    ``TYPE[PLATFORM]:KEY=VALUE``) as exporter attributes, checked as buildx does."""
    out: dict[str, str] = {}
    for value in values:
        if not value:
            continue
        name, sep, val = value.partition("=")
        if not sep:
            raise UsageError(f'parse annotations: invalid annotation "{value}", expected '
                             "key=value")
        types, colon, key = name.partition(":")
        if not colon:
            out[AnnotationKey("", "", name).attr()] = val
            continue
        for part in types.split(","):
            m = _FLAG_TYPE.match(part)
            if m is None:
                raise UsageError(f'parse annotations: invalid annotation type "{part}", '
                                 "expected type and optional platform in square brackets")
            typ, platform = m.groups()
            if typ not in TYPES:
                raise UsageError(f'parse annotations: unknown annotation type "{typ}"',
                                 hint=f"annotation kinds: {', '.join(TYPES)}")
            plat = _platform(platform, f'parse annotations: invalid platform "{platform}"') \
                if platform else ""
            out[AnnotationKey(typ, plat, key).attr()] = val
    return out


@dataclass
class Annotations:
    """The annotations of one image, by where they land."""

    index: dict[str, str] = field(default_factory=dict)
    index_descriptor: dict[str, str] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)
    manifest_descriptor: dict[str, str] = field(default_factory=dict)

    def of(self, typ: str) -> dict[str, str]:
        return {INDEX: self.index, INDEX_DESCRIPTOR: self.index_descriptor,
                MANIFEST: self.manifest, MANIFEST_DESCRIPTOR: self.manifest_descriptor}[typ]


def group(attrs: dict[str, str]) -> dict[str, Annotations]:
    """An output's annotation attributes by platform ("" for all), as BuildKit groups them."""
    out: dict[str, Annotations] = {}
    for name, value in attrs.items():
        ak = parse_attr(name)
        if ak is not None:
            out.setdefault(ak.platform, Annotations()).of(ak.type)[ak.key] = value
    return out


def for_platform(groups: dict[str, Annotations], platform: str | None) -> Annotations:
    """What one image gets: index kinds from every group, manifest kinds from the
    platform-less group and then its own platform's (None: the platform-less only)."""
    res = Annotations()
    for g in groups.values():
        res.index.update(g.index)
        res.index_descriptor.update(g.index_descriptor)
    for p in ("", platform) if platform else ("",):
        if p in groups:
            res.manifest.update(groups[p].manifest)
            res.manifest_descriptor.update(groups[p].manifest_descriptor)
    return res


def check(groups: dict[str, Annotations], platforms: list[str], *, oci: bool) -> None:
    """BuildKit's rules for an export of ``platforms`` (normalised; several: an index).
    Its messages; build errors, as in BuildKit (raised as the solve's)."""
    multi = len(platforms) > 1
    for p, g in groups.items():
        if p and multi and p not in platforms:
            raise SolveError(UserError(f"invalid annotation: no platform {p} found in source"))
        if not oci and (g.index or g.index_descriptor or g.manifest_descriptor):
            raise SolveError(UserError('cannot export annotations with "oci-mediatypes=false"'))
    if not multi:
        a = for_platform(groups, None)
        if a.index or a.index_descriptor:
            raise SolveError(UserError(
                "index annotations not supported for single platform export"))
