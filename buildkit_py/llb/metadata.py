"""Per-op options that are not part of the vertex digest: names, cache, source maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from buildkit_py.llb import ops_pb2
from buildkit_py.llb.errors import LLBError

# Well-known description keys.
CUSTOM_NAME = "llb.customname"
DOCKERFILE_COMMAND = "com.docker.dockerfile.v1.command"
# bkpy's own: the build args in scope of a RUN (comma separated names), so an explained
# cache miss can say "build arg X changed" rather than "env X changed".
BUILD_ARGS = "bkpy.args"


@dataclass(frozen=True)
class Location:
    """Line ranges (1-based, inclusive) of a source file that produced an op."""

    filename: str
    ranges: tuple[tuple[int, int], ...]
    data: bytes = b""
    language: str = "Dockerfile"


@dataclass(frozen=True)
class SourceFile:
    """A source file (e.g. a Dockerfile) whose lines ops point back into."""

    filename: str
    data: bytes = b""
    language: str = "Dockerfile"

    def location(self, start: int, end: int | None = None) -> Location:
        """The Location of lines ``start..end`` (end defaults to start) of this file."""
        return source_location(self.filename, (start, end or start), self.data, self.language)


def source_location(
    filename: str,
    lines: int | tuple[int, int] | Sequence[tuple[int, int]],
    data: bytes = b"",
    language: str = "Dockerfile",
) -> Location:
    """Build a Location from a line, a ``(start, end)`` range or a list of ranges."""
    if isinstance(lines, int):
        ranges: tuple[tuple[int, int], ...] = ((lines, lines),)
    elif isinstance(lines, tuple) and len(lines) == 2 and all(isinstance(x, int) for x in lines):
        ranges = ((int(lines[0]), int(lines[1])),)  # type: ignore[arg-type]
    else:
        ranges = tuple((int(a), int(b)) for a, b in lines)  # type: ignore[misc]
    for start, end in ranges:
        if start < 1 or end < start:
            raise LLBError(f"invalid line range {start}-{end} in {filename}")
    return Location(filename, ranges, data, language)


@dataclass(frozen=True)
class ProgressGroup:
    """Groups several vertices under one name in progress output."""

    id: str
    name: str
    weak: bool = False


@dataclass(frozen=True)
class OpMeta:
    """Metadata one op carries into the Definition (see ``ops_pb2.OpMetadata``)."""

    description: tuple[tuple[str, str], ...] = ()
    ignore_cache: bool = False
    progress_group: ProgressGroup | None = None
    locations: tuple[Location, ...] = ()

    def to_proto(self) -> ops_pb2.OpMetadata | None:
        """The metadata message, or None when there is nothing to record."""
        if not (self.description or self.ignore_cache or self.progress_group):
            return None
        md = ops_pb2.OpMetadata(ignore_cache=self.ignore_cache, description=dict(self.description))
        if self.progress_group is not None:
            pg = self.progress_group
            md.progress_group.CopyFrom(ops_pb2.ProgressGroup(id=pg.id, name=pg.name, weak=pg.weak))
        return md


NO_META = OpMeta()


def make_meta(
    description: str | Mapping[str, str] | None = None,
    ignore_cache: bool = False,
    progress_group: ProgressGroup | None = None,
    location: Location | Sequence[Location] | None = None,
) -> OpMeta:
    """Build an OpMeta; a plain-string description becomes the display name."""
    if description is None:
        desc: tuple[tuple[str, str], ...] = ()
    elif isinstance(description, str):
        desc = ((CUSTOM_NAME, description),)
    else:
        desc = tuple(sorted(description.items()))
    if location is None:
        locs: tuple[Location, ...] = ()
    elif isinstance(location, Location):
        locs = (location,)
    else:
        locs = tuple(location)
    if not (desc or ignore_cache or progress_group or locs):
        return NO_META
    return OpMeta(desc, ignore_cache, progress_group, locs)


def merge_metadata(into: ops_pb2.OpMetadata, other: ops_pb2.OpMetadata) -> None:
    """Fold ``other`` into ``into`` for two identical ops (first description wins per key)."""
    into.ignore_cache = into.ignore_cache or other.ignore_cache
    for key, value in other.description.items():
        if key not in into.description:
            into.description[key] = value
    for cap, on in other.caps.items():
        into.caps[cap] = into.caps.get(cap, False) or on
    if not into.HasField("progress_group") and other.HasField("progress_group"):
        into.progress_group.CopyFrom(other.progress_group)
