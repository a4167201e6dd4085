"""``--cache-to`` / ``--cache-from`` specs: parsed and checked once, before building.

As buildx: ``type=registry,ref=REF`` (a bare ``REF`` is short for it), ``type=local``
(``dest=DIR`` to export, ``src=DIR`` to import, ``tag=``, ``digest=``), ``type=inline``
(export only: the cache rides in the image config). Unknown keys are refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from buildkit_py.errors import UsageError
from buildkit_py.units import parse_csv_kv

COMPRESSIONS = ("gzip", "zstd", "uncompressed")
_BOOL = ("true", "false")
_EXPORT_KEYS = {
    "registry": {"ref", "mode", "image-manifest", "oci-mediatypes", "compression",
                 "compression-level", "force-compression", "ignore-error", "cache-mounts",
                 "push-by-digest"},
    "local": {"dest", "tag", "mode", "image-manifest", "oci-mediatypes", "compression",
              "compression-level", "force-compression", "ignore-error", "cache-mounts"},
    "inline": {"mode", "ignore-error"},
}
_IMPORT_KEYS = {"registry": {"ref"}, "local": {"src", "tag", "digest"}}


def parse_cache_arg(text: str, flag: str) -> dict[str, str]:
    """One ``--cache-to``/``--cache-from`` value as attributes (``REF`` alone is
    ``type=registry,ref=REF``, as buildx reads it)."""
    if "=" not in text:
        if not text:
            raise UsageError(f"{flag}: empty value")
        return {"type": "registry", "ref": text}
    return parse_csv_kv(text, flag)


@dataclass(frozen=True)
class CacheExport:
    type: str
    attrs: dict[str, str]

    @property
    def mode(self) -> str:
        return self.attrs.get("mode", "min")

    @property
    def ignore_error(self) -> bool:
        return self.attrs.get("ignore-error", "false") == "true"

    @property
    def cache_mounts(self) -> bool:
        """bkpy's own: export the build's cache-mount contents too (remotecache.mounts)."""
        return self.attrs.get("cache-mounts", "false") == "true"

    @property
    def by_digest(self) -> bool:
        """bkpy's own, for the nodes of a multi-node build: push the cache manifest
        untagged (its digest goes to the build's metadata, ``remotecache.merge``)."""
        return self.attrs.get("push-by-digest", "false") == "true"

    @property
    def image_manifest(self) -> bool:
        return self.attrs.get("image-manifest", "true") == "true"

    @property
    def oci(self) -> bool:
        return self.attrs.get("oci-mediatypes", "true") == "true"

    @property
    def where(self) -> str:
        return self.attrs.get("ref") or self.attrs.get("dest") or "inline"


@dataclass(frozen=True)
class CacheImport:
    type: str
    attrs: dict[str, str]

    @property
    def where(self) -> str:
        return self.attrs.get("ref") or self.attrs.get("src") or ""


def _check_keys(attrs: dict[str, str], allowed: set[str], flag: str, kind: str) -> None:
    for key in attrs:
        if key != "type" and key not in allowed:
            raise UsageError(f"{flag}: unknown key {key!r} for type={kind}",
                             hint=f"keys of type={kind}: {', '.join(sorted(allowed))}")


def _bool(attrs: dict[str, str], key: str, flag: str) -> None:
    if key in attrs and attrs[key] not in _BOOL:
        raise UsageError(f"{flag}: {key}={attrs[key]!r} is not true or false")


def _kind(attrs: dict[str, str], flag: str, table: dict[str, set[str]], types: str) -> str:
    """The spec's type, once its keys are known ones for it (and a registry has a ref)."""
    kind = attrs.get("type", "")
    if not kind:
        raise UsageError(f"{flag}: type required", hint="e.g. type=registry,ref=REG/REPO:cache")
    if kind not in table:
        raise UsageError(f"{flag}: unknown cache type {kind!r}", hint=f"types: {types}")
    _check_keys(attrs, table[kind], flag, kind)
    if kind == "registry" and not attrs.get("ref"):
        raise UsageError(f"{flag}: type=registry needs ref=")
    return kind


def export_spec(attrs: dict[str, str]) -> CacheExport:
    flag = "--cache-to"
    kind = _kind(attrs, flag, _EXPORT_KEYS, "registry, local, inline")
    if kind == "local" and not attrs.get("dest"):
        raise UsageError(f"{flag}: type=local needs dest=")
    mode = attrs.get("mode", "min")
    if mode not in ("min", "max"):
        raise UsageError(f"{flag}: mode={mode!r}: use min or max")
    if kind == "inline" and mode != "min":
        raise UsageError(f"{flag}: type=inline supports only mode=min",
                         hint="use type=registry for mode=max")
    for key in ("image-manifest", "oci-mediatypes", "force-compression", "ignore-error",
                "cache-mounts", "push-by-digest"):
        _bool(attrs, key, flag)
    comp = attrs.get("compression", "gzip")
    if comp not in COMPRESSIONS:
        raise UsageError(f"{flag}: unknown compression {comp!r}",
                         hint="use gzip, zstd or uncompressed")
    level = attrs.get("compression-level")
    if level is not None and not level.lstrip("-").isdigit():
        raise UsageError(f"{flag}: compression-level={level!r} is not a number")
    spec = CacheExport(kind, dict(attrs))
    if spec.image_manifest and not spec.oci and kind != "inline":
        raise UsageError(f"{flag}: image-manifest=true needs oci-mediatypes=true")
    return spec


def import_spec(attrs: dict[str, str]) -> CacheImport:
    flag = "--cache-from"
    kind = _kind(attrs, flag, _IMPORT_KEYS, "registry (also for an image with inline cache), local")
    if kind == "local" and not attrs.get("src"):
        raise UsageError(f"{flag}: type=local needs src=")
    return CacheImport(kind, dict(attrs))
