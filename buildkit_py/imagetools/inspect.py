"""``imagetools inspect``: an image's manifest or index as text, raw bytes or a template.

Human output follows buildx: ``Name``, ``MediaType``, ``Digest`` and, for an index, each
manifest's ``Name`` (``REPO:TAG@DIGEST``), ``MediaType``, ``Platform`` and annotations.
Template data (``--format``): ``.Name`` (the normalised reference), ``.Manifest`` (the
document with ``digest`` and ``size`` added, as buildx shows it) and ``.Image`` (the image
config; for an index a map ``os/arch[/variant]`` -> config of every image manifest with a
real platform). Configs are fetched only when a template reads ``.Image``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from buildkit_py.errors import UserError
from buildkit_py.imagetools.sources import Blob, Fetched, ManifestSource, parse_document
from buildkit_py.imagetools.template import Fields, Lazy, Template, parse
from buildkit_py.registry import mediatypes as mt

MAX_DEPTH = 4


def platform_text(platform: Any) -> str:
    """``os/arch[/variant]`` of an index entry's platform object ("" when absent)."""
    if not isinstance(platform, dict):
        return ""
    parts = [str(platform.get("os") or "unknown"), str(platform.get("architecture") or "unknown")]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def _block(rows: list[tuple[str, str]], indent: str) -> list[str]:
    width = max(len(label) for label, _ in rows) + 2
    return [f"{indent}{(label + ':').ljust(width)}{value}".rstrip() for label, value in rows]


@dataclass
class Inspection:
    """One inspected reference."""

    source: ManifestSource
    root: Fetched

    @property
    def name(self) -> str:
        return str(self.source.ref)

    @property
    def raw(self) -> bytes:
        return self.root.body

    def children(self) -> list[dict[str, Any]]:
        if not self.root.is_index:
            return []
        manifests = self.root.document().get("manifests")
        if not isinstance(manifests, list):
            raise UserError(f"index {self.root.digest} of {self.name} has no manifests list")
        return [m for m in manifests if isinstance(m, dict)]

    def human(self) -> str:
        lines = _block([("Name", self.name), ("MediaType", self.root.media_type),
                        ("Digest", self.root.digest)], "")
        children = self.children()
        if children:
            repo = str(self.source.ref).partition("@")[0]
            lines += ["", "Manifests:"]
            for i, child in enumerate(children):
                if i:
                    lines.append("")
                rows = [("Name", f"{repo}@{child.get('digest', '')}"),
                        ("MediaType", str(child.get("mediaType", "")))]
                plat = platform_text(child.get("platform"))
                if plat:
                    rows.append(("Platform", plat))
                annotations = child.get("annotations") or {}
                if annotations:
                    rows.append(("Annotations", ""))
                lines += _block(rows, "  ")
                lines += [f"    {k}: {v}" for k, v in sorted(annotations.items())]
        return "\n".join(lines) + "\n"

    def manifest_data(self) -> dict[str, Any]:
        """The document as buildx's ``.Manifest``: digest and size after mediaType."""
        doc = self.root.document()
        out: dict[str, Any] = {}
        for key, value in doc.items():
            out[key] = value
            if key == "mediaType":
                out["digest"] = self.root.digest
                out["size"] = self.root.size
        if "digest" not in out:
            out = {"mediaType": self.root.media_type, "digest": self.root.digest,
                   "size": self.root.size, **out}
        return out

    def config_of(self, manifest: Fetched) -> dict[str, Any]:
        doc = manifest.document()
        cfg = doc.get("config")
        if not isinstance(cfg, dict) or "digest" not in cfg:
            raise UserError(f"manifest {manifest.digest} of {self.name} has no config")
        return parse_document(self.source.blob(Blob.from_json(cfg)), f"config {cfg['digest']}")

    def image_data(self) -> Any:
        """The config (a manifest) or platform -> config (an index)."""
        if not self.root.is_index:
            return self.config_of(self.root)
        out: dict[str, Any] = {}
        self._collect_configs(self.children(), out, 0)
        return out

    def _collect_configs(self, children: list[dict[str, Any]], out: dict[str, Any],
                         depth: int) -> None:
        if depth > MAX_DEPTH:
            raise UserError(f"{self.name}: indexes nested too deeply")
        for child in children:
            media_type = str(child.get("mediaType", ""))
            plat = child.get("platform")
            fetched = None
            if mt.is_index(media_type):
                fetched = self.source.manifest(str(child["digest"]))
                nested = fetched.document().get("manifests") or []
                self._collect_configs([m for m in nested if isinstance(m, dict)], out, depth + 1)
                continue
            if not isinstance(plat, dict) or plat.get("os") in (None, "", "unknown"):
                continue  # attestations and platform-less artifacts have no image config
            key = platform_text(plat)
            if key not in out:
                out[key] = self.config_of(self.source.manifest(str(child["digest"])))

    def template_data(self) -> Fields:
        return Fields(Name=self.name, Manifest=Lazy(self.manifest_data),
                      Image=Lazy(self.image_data))

    def render(self, template: str | Template) -> str:
        """Output for ``--format``; exactly ``{{.Manifest}}`` is the human output (the
        buildx default)."""
        parsed = template if isinstance(template, Template) else parse(template)
        if parsed.is_field("Manifest"):
            return self.human()
        text = parsed.render(self.template_data())
        return text if text.endswith("\n") or not text else text + "\n"


def inspect(source: ManifestSource) -> Inspection:
    """Fetch what ``source.ref`` points at."""
    return Inspection(source, source.root())
