"""Source ops: container images, the client's local context, HTTP files, git repos."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.errors import LLBError
from buildkit_py.llb.metadata import Location, OpMeta, ProgressGroup, make_meta
from buildkit_py.llb.node import InputIndexer, OpNode, Output
from buildkit_py.llb.platform import to_platform
from buildkit_py.llb.state import State
from buildkit_py.platforms import Platform

_DOCKER_HUB = "docker.io"
_NAME_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_DIGEST_FORMAT = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_HEX = re.compile(r"[a-f0-9]+")
_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


def digest_error(value: str) -> str | None:
    """Why ``value`` is not a valid content digest, in go-digest's words (None if valid)."""
    algorithm, sep, encoded = value.partition(":")
    if not algorithm or not sep or not encoded:
        return "invalid checksum digest format"
    if algorithm not in _DIGEST_HEX_LEN:
        if not _DIGEST_FORMAT.fullmatch(value):
            return "invalid checksum digest format"
        return "unsupported digest algorithm"
    if len(encoded) != _DIGEST_HEX_LEN[algorithm]:
        return "invalid checksum digest length"
    if not _HEX.fullmatch(encoded):
        return "invalid checksum digest format"
    return None


class SourceNode(OpNode):
    """A source op: an identifier plus string attributes."""

    def __init__(
        self,
        identifier: str,
        attrs: Mapping[str, str],
        platform: ops_pb2.Platform | None,
        meta: OpMeta,
        platform_specific: bool,
    ) -> None:
        super().__init__(platform, meta)
        self.identifier = identifier
        self.attrs = dict(attrs)
        self.platform_specific = platform_specific

    def inputs(self) -> Sequence[Output]:
        return ()

    def fill(self, op: ops_pb2.Op, idx: InputIndexer) -> None:
        op.source.identifier = self.identifier
        op.source.attrs.update(self.attrs)


def normalize_image_ref(ref: str) -> str:
    """Fully qualify an image reference: ``alpine`` -> ``docker.io/library/alpine:latest``."""
    name, digest = ref, ""
    if "@" in name:
        name, digest = name.split("@", 1)
        if not _DIGEST.match(digest):
            raise LLBError(f"invalid image reference {ref!r}: bad digest {digest!r}")
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise LLBError(f"invalid image reference {ref!r}: bad tag {tag!r}")
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, parts[1:]
    else:
        domain, path = _DOCKER_HUB, parts
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = _DOCKER_HUB
    if domain == _DOCKER_HUB and len(path) == 1:
        path = ["library", *path]
    if not path or not all(_NAME_COMPONENT.match(p) for p in path):
        raise LLBError(
            f"invalid image reference {ref!r}",
            hint="repository names are lowercase letters, digits and . _ - separators",
        )
    out = f"{domain}/{'/'.join(path)}"
    if tag or not digest:
        out += f":{tag or 'latest'}"
    if digest:
        out += f"@{digest}"
    return out


def image(
    ref: str,
    *,
    platform: str | Platform | ops_pb2.Platform | None = None,
    resolve_mode: str | None = None,
    description: str | Mapping[str, str] | None = None,
    progress_group: ProgressGroup | None = None,
    location: Location | Sequence[Location] | None = None,
) -> State:
    """A container image (``docker-image://<normalised ref>``) as the root filesystem."""
    attrs: dict[str, str] = {}
    if resolve_mode is not None:
        if resolve_mode not in ("default", "pull", "local"):
            raise LLBError(f"invalid image resolve mode {resolve_mode!r}")
        attrs["image.resolvemode"] = resolve_mode
    plat = to_platform(platform) if platform is not None else None
    node = SourceNode(
        "docker-image://" + normalize_image_ref(ref),
        attrs,
        plat,
        make_meta(description, False, progress_group, location),
        platform_specific=True,
    )
    return State(output=Output(node), plat=plat)


def local(
    name: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_paths: Sequence[str] = (),
    shared_key: str = "",
    session_id: str = "",
    description: str | Mapping[str, str] | None = None,
    progress_group: ProgressGroup | None = None,
    location: Location | Sequence[Location] | None = None,
) -> State:
    """Files the client sends for ``name`` (e.g. ``context``), filtered by patterns."""
    if not name:
        raise LLBError("local source needs a name")
    attrs: dict[str, str] = {}
    # JSON lists so patterns containing commas survive; empty lists are left out so
    # "no filter" has a single encoding (and a single digest).
    if include:
        attrs["local.includepattern"] = json.dumps(list(include))
    if exclude:
        attrs["local.excludepatterns"] = json.dumps(list(exclude))
    if follow_paths:
        attrs["local.followpaths"] = json.dumps(list(follow_paths))
    if shared_key:
        attrs["local.sharedkeyhint"] = shared_key
    if session_id:
        attrs["local.session"] = session_id
    node = SourceNode(
        "local://" + name,
        attrs,
        None,
        make_meta(description, False, progress_group, location),
        platform_specific=False,
    )
    return State(output=Output(node))


def http(
    url: str,
    *,
    checksum: str = "",
    filename: str = "",
    chmod: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
    description: str | Mapping[str, str] | None = None,
    progress_group: ProgressGroup | None = None,
    location: Location | Sequence[Location] | None = None,
) -> State:
    """A single file downloaded from ``url`` (``filename`` names it in the result)."""
    if not url.startswith(("http://", "https://")):
        raise LLBError(f"invalid URL {url!r}: only http:// and https:// are supported")
    attrs: dict[str, str] = {}
    if checksum:
        problem = digest_error(checksum)
        if problem:
            raise LLBError(problem, hint=f"{checksum!r} is not sha256:<64 hex digits>")
        attrs["http.checksum"] = checksum
    if filename:
        attrs["http.filename"] = filename
    if chmod is not None:
        attrs["http.perm"] = f"0{chmod:o}"
    if uid is not None:
        attrs["http.uid"] = str(uid)
    if gid is not None:
        attrs["http.gid"] = str(gid)
    node = SourceNode(
        url, attrs, None, make_meta(description, False, progress_group, location), False
    )
    return State(output=Output(node))


def _git_identifier(remote: str) -> str:
    """``https://host/repo.git`` / ``git@host:repo.git`` -> ``host/repo.git``."""
    m = re.match(r"^[a-z][a-z0-9+.-]*://(?:[^@/]+@)?(.*)$", remote)
    if m:
        return m.group(1)
    m = re.match(r"^(?:[^@/]+@)?([^:/]+):(.+)$", remote)  # scp-like ssh form
    if m:
        return f"{m.group(1)}/{m.group(2)}"
    return remote


def git(
    remote: str,
    ref: str = "",
    *,
    subdir: str = "",
    keep_git_dir: bool = False,
    checksum: str = "",
    skip_submodules: bool = False,
    auth_header_secret: str = "",
    mount_ssh_sock: str = "",
    known_ssh_hosts: str = "",
    description: str | Mapping[str, str] | None = None,
    progress_group: ProgressGroup | None = None,
    location: Location | Sequence[Location] | None = None,
) -> State:
    """A git checkout of ``ref`` (branch, tag or commit) of ``remote``, optionally a subdir."""
    if not remote:
        raise LLBError("git source needs a remote")
    ident = "git://" + _git_identifier(remote)
    if ref or subdir:
        ident += "#" + ref
        if subdir:
            ident += ":" + subdir
    attrs = {"git.fullurl": remote}
    if keep_git_dir:
        attrs["git.keepgitdir"] = "true"
    if checksum:
        attrs["git.checksum"] = checksum
    if skip_submodules:
        attrs["git.skipsubmodules"] = "true"
    if auth_header_secret:
        attrs["git.authheadersecret"] = auth_header_secret
    if mount_ssh_sock:
        attrs["git.mountsshsock"] = mount_ssh_sock
    if known_ssh_hosts:
        attrs["git.knownsshhosts"] = known_ssh_hosts
    node = SourceNode(
        ident, attrs, None, make_meta(description, False, progress_group, location), False
    )
    return State(output=Output(node))
