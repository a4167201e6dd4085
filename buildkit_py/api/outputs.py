"""What ``--output`` asks for: an exporter kind and its attributes.

Each output type means the same to every party of a build (the CLI naming images, a
remote client joining its nodes' exports, the daemon sending files back, the builder's
exporters): that meaning is one table, ``OUTPUT_KINDS``; nothing else compares type
names. Which exporter writes each type is the exporter package's table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from buildkit_py.api.annotations import MANIFEST, AnnotationKey, is_annotation_attr, parse_attr
from buildkit_py.errors import UsageError
from buildkit_py.units import parse_csv_kv


@dataclass(frozen=True)
class OutputKind:
    """What one output type makes and where it goes."""

    named: bool = False       # an image that goes by name: into the image store, to a registry
    pushes: bool = False      # always pushed (a named image otherwise only with push=true)
    layout: bool = False      # an OCI image layout: a tar of it, or a folder with tar=false
    docker: bool = False      # ... in docker's flavour (manifest.json, docker media types)
    files: bool = False       # the result's files, copied into a folder
    tarball: bool = False     # the result's files, as one tar
    needs_dest: bool = False  # refused without dest=PATH


OUTPUT_KINDS: dict[str, OutputKind] = {
    "image": OutputKind(named=True),
    "registry": OutputKind(named=True, pushes=True),
    "oci": OutputKind(layout=True, needs_dest=True),
    "docker": OutputKind(layout=True, docker=True),  # no dest: to stdout
    "local": OutputKind(files=True, needs_dest=True),
    "tar": OutputKind(tarball=True, needs_dest=True),
}
_NO_KIND = OutputKind()  # a type this version does not know (from a newer client)
_NO_KEY = AnnotationKey("", "", "")

# exporter attributes that shape the images themselves (the same on every node)
_IMAGE_ATTRS = ("compression", "compression-level", "force-compression", "rewrite-timestamp")

# The options each output type takes from the command line (annotation* ones aside:
# every type takes them, as buildx gives --annotation to every output).
_IMAGE_OPTS = ("name", "compression", "compression-level", "force-compression",
               "oci-mediatypes", "rewrite-timestamp")
OUTPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    "image": (*_IMAGE_OPTS, "push", "load"),
    "registry": (*_IMAGE_OPTS, "push"),
    "oci": (*_IMAGE_OPTS, "dest", "tar"),
    "docker": (*_IMAGE_OPTS, "dest", "tar"),
    "local": ("dest",),
    "tar": ("dest",),
}
# Options BuildKit's exporters know that bkpy does not implement: refused by name rather
# than ignored (BuildKit itself passes any key it does not know on, silently).
BUILDKIT_ONLY_OPTIONS = (
    "push-by-digest", "registry.insecure", "insecure", "unpack", "store",
    "dangling-name-prefix", "danging-name-empty-only", "name-canonical", "oci-artifact",
    "attestation-inline", "prefer-nondist-layers", "source-date-epoch", "platform-split",
    "attestation-prefix", "unsafe-internal-store-allow-incomplete", "buildinfo",
    "buildinfo-attrs")

# ... except when the value asks for what bkpy does anyway
_SAME_AS_BKPY = {("local", "platform-split"): "true", ("tar", "platform-split"): "true",
                 ("image", "store"): "true"}


def check_options(kind: str, attrs: dict[str, str]) -> None:
    """Refuse an option output type ``kind`` does not understand, naming it (a typo
    must not pass silently); annotation options are checked for BuildKit's grammar."""
    takes = OUTPUT_OPTIONS.get(kind, ())
    for key, value in attrs.items():
        if key in takes or _SAME_AS_BKPY.get((kind, key)) == value.lower():
            continue
        if is_annotation_attr(key) and parse_attr(key) is not None:
            continue
        if key in BUILDKIT_ONLY_OPTIONS:
            raise UsageError(f'exporter option "{key}" of type={kind} is not supported by '
                             "bkpy", hint=f"type={kind} takes: {', '.join(takes)}, "
                                          "annotation*.KEY")
        raise UsageError(f'unknown exporter option "{key}" for type={kind}',
                         hint=f"type={kind} takes: {', '.join(takes)}, annotation*.KEY")


@dataclass
class OutputSpec:
    """One ``--output``: its kind and attributes, and what that kind means for a build."""

    type: str
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> OutputKind:
        return OUTPUT_KINDS.get(self.type, _NO_KIND)

    @property
    def dest(self) -> str | None:
        return self.attrs.get("dest")

    @property
    def pushes(self) -> bool:
        return self.kind.pushes or (self.kind.named and self.attrs.get("push") == "true")

    @property
    def leaves_builder(self) -> bool:
        """The image goes elsewhere than the local store (and so is compressed)."""
        return self.pushes or self.kind.layout

    @property
    def is_tar_file(self) -> bool:
        """Written as one file (a tar stream), not as a directory."""
        return self.kind.tarball or (self.kind.layout and self.attrs.get("tar") != "false")

    @property
    def client_side(self) -> bool:
        """Written to the client's filesystem (a remote builder sends it back)."""
        return self.kind.layout or self.kind.files or self.kind.tarball

    @property
    def oci_mediatypes(self) -> bool:
        """The image's manifests use OCI media types (docker's: ``oci-mediatypes=false``,
        the default of ``type=docker``)."""
        default = "false" if self.kind.docker else "true"
        return self.attrs.get("oci-mediatypes", default) == "true"

    def image_names(self, tags: list[str]) -> list[str]:
        """The names an image output gives its image: ``name=``, else the build's tags."""
        return [n for n in self.attrs.get("name", "").split(",") if n] or list(tags)

    def as_layout(self, dest: str) -> OutputSpec:
        """What a node of a multi-node builder exports so the client can join the
        platforms into this output: an OCI layout folder with the same image shape."""
        # manifest annotations are in the node's manifests; the other kinds belong to
        # the index the client joins (not yet annotated: see the README)
        attrs = {k: v for k, v in self.attrs.items()
                 if k in _IMAGE_ATTRS or (is_annotation_attr(k) and
                                          (parse_attr(k) or _NO_KEY).type == MANIFEST)}
        attrs["oci-mediatypes"] = self.attrs.get(
            "oci-mediatypes", "false" if self.kind.docker else "true")
        attrs.update(dest=dest, tar="false")
        return OutputSpec("oci", attrs)


def parse_output(spec: str) -> OutputSpec:
    """``-o`` value: ``type=local,dest=DIR`` or a bare path (= local)."""
    if "=" not in spec:
        return OutputSpec("local", {"dest": spec})
    attrs = parse_csv_kv(spec, "--output")
    kind = attrs.pop("type", "")
    if not kind:
        if "dest" in attrs:
            kind = "local"
        else:
            raise UsageError(f"--output {spec!r}: missing type=",
                             hint=f"types: {', '.join(OUTPUT_KINDS)}")
    if kind not in OUTPUT_KINDS:
        raise UsageError(f"--output {spec!r}: unknown type {kind!r}",
                         hint=f"types: {', '.join(OUTPUT_KINDS)}")
    if OUTPUT_KINDS[kind].needs_dest and "dest" not in attrs:
        raise UsageError(f"--output type={kind} needs dest=PATH")
    check_options(kind, attrs)
    return OutputSpec(kind, attrs)
