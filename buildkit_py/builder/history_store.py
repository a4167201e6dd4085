"""Where finished and running builds are kept: ``<root>/history/<ref>/``, one folder each.

A folder holds ``record.json`` (what was asked, when, how it ended, a summary per step),
``Dockerfile`` (the definition as it was built), ``events.jsonl`` (the progress, for
replaying it) and ``logs/<N>.log`` (everything step #N wrote, every byte: BuildKit clips a
step's log at 2 MiB, buildx#484; we never do). Plain files: a folder is the export bundle
as it is, and survives a daemon restart as the rest of the state root does.

Refs are 25 lower-case letters and digits, as BuildKit's build refs. Retention
(``[history]`` in the builder config: entries, age, total size) runs when a build ends;
the build that just ended is never the one removed. It needs four fields of each record,
not the records: ``.retention.json`` remembers those fields per folder, under the identity
of the ``record.json`` they came from (inode, mtime, size; a record is always replaced,
never rewritten in place), so a build reads one small file and a ``stat`` per folder
instead of parsing 50 records of ~6 kB. The file is only a cache: a missing, torn or
stale one costs the reads it saves, and the last of two concurrent writers wins.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import string
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from buildkit_py.config import HistoryConfig as HistoryPolicy
from buildkit_py.errors import UsageError, UserError

RECORD = "record.json"
EVENTS = "events.jsonl"
LOGS = "logs"
DOCKERFILE = "Dockerfile"
FAILED = "failed"  # the first failed RUN step: what it changed (FAILED_TAR)
FAILED_TAR = "rootfs.tar"
RETENTION_INDEX = ".retention.json"
_RETENTION_FIELDS = ("status", "started_at", "completed_at")
_REF_CHARS = string.ascii_lowercase + string.digits
_REF_LEN = 25


def new_ref() -> str:
    # 25 of 36 characters from 8 random bits each: a slight bias, ample for an id
    return "".join(_REF_CHARS[b % len(_REF_CHARS)] for b in os.urandom(_REF_LEN))


def _newest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: float(r.get("started_at") or 0), reverse=True)


def log_name(index: int) -> str:
    return f"{LOGS}/{index}.log"


class HistoryStore:
    """The history folder of one state root."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "history"

    def path(self, ref: str) -> Path:
        return self.dir / ref

    def _names(self) -> list[str]:
        try:
            return os.listdir(self.dir)
        except FileNotFoundError:
            return []

    def _read(self, name: str) -> dict[str, Any] | None:
        """Folder ``name``'s record; None for a folder being created, or not ours."""
        try:
            record = json.loads((self.dir / name / RECORD).read_bytes())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("ref") == name else None

    def records(self) -> list[dict[str, Any]]:
        """Every readable record, newest first."""
        return _newest_first([r for r in map(self._read, self._names()) if r is not None])

    def summaries(self) -> list[dict[str, Any]]:
        """``ref``, ``status``, ``started_at`` and ``completed_at`` of every readable
        record, newest first: what retention decides by (see the module's docstring)."""
        names = self._names()
        index_path = self.dir / RETENTION_INDEX
        try:
            index = json.loads(index_path.read_bytes())
        except (OSError, ValueError):
            index = None
        known: dict[str, Any] = index if isinstance(index, dict) else {}
        current: dict[str, Any] = {}
        for name in names:
            try:
                st = os.stat(self.dir / name / RECORD)
            except OSError:
                continue  # the index itself, a folder being created, or not ours
            stamp = [st.st_ino, st.st_mtime_ns, st.st_size]
            entry = known.get(name)
            if not (isinstance(entry, dict) and entry.get("stamp") == stamp):
                record = self._read(name)
                if record is None:
                    continue
                entry = {"stamp": stamp, **{k: record.get(k) for k in _RETENTION_FIELDS}}
            current[name] = entry
        if current != known:
            tmp = index_path.with_name(f"{RETENTION_INDEX}.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(current))
                tmp.replace(index_path)
            except OSError:
                tmp.unlink(missing_ok=True)  # read-only or full: the next build reads again
        return _newest_first([{"ref": name, **{k: e.get(k) for k in _RETENTION_FIELDS}}
                              for name, e in current.items()])

    def resolve(self, ref: str | None) -> dict[str, Any]:
        return pick(self.records(), ref)

    def read_chunks(self, ref: str, rel: str) -> Iterator[bytes]:
        """The bytes of file ``rel`` of build ``ref`` (see :func:`check_file`); nothing
        when the build has no such file."""
        check_file(rel)
        try:
            f = open(self.path(ref) / rel, "rb")
        except FileNotFoundError:
            return
        with f:
            while chunk := f.read(1 << 20):
                yield chunk

    def remove(self, ref: str) -> None:
        shutil.rmtree(self.path(ref), ignore_errors=True)

    def size(self, ref: str) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.path(ref)):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        return total

    def apply(self, policy: HistoryPolicy, keep: str | None = None,
              now: float | None = None) -> list[str]:
        """Remove what the policy no longer keeps (never ``keep``); the refs removed."""
        now = time.time() if now is None else now
        removed: list[str] = []
        kept_size = 0
        for i, record in enumerate(self.summaries()):
            ref = str(record["ref"])
            if ref == keep or record.get("status") == "running":
                kept_size += self.size(ref) if policy.max_size else 0
                continue
            age = now - float(record.get("completed_at") or record.get("started_at") or now)
            size = self.size(ref) if policy.max_size else 0
            if ((policy.max_entries and i >= policy.max_entries)
                    or (policy.max_age and age > policy.max_age)
                    or (policy.max_size and kept_size + size > policy.max_size)):
                self.remove(ref)
                removed.append(ref)
            else:
                kept_size += size
        return removed

    # bundles -----------------------------------------------------------------------------

    def export(self, ref: str, dest: Path) -> None:
        """Write build ``ref`` as a tar bundle (``-`` is not supported: a file)."""
        import tarfile  # reason: ~6 ms, for export and import only, not every build

        folder = self.path(ref)
        tmp = dest.with_name(dest.name + ".part")
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(folder, arcname=ref)
        os.replace(tmp, dest)

    def import_bundle(self, src: Path) -> str:
        """Add the build in bundle ``src``; its ref. An existing ref is not overwritten."""
        import tarfile  # reason: ~6 ms, for export and import only, not every build

        try:
            tar = tarfile.open(src, "r:*")
        except (OSError, tarfile.TarError) as err:
            raise UsageError(f"{src}: not a history bundle ({err})",
                             hint="make one with `bkpy history export REF -o FILE`") from None
        with tar:
            members = tar.getmembers()
            ref = members[0].name.split("/", 1)[0] if members else ""
            record = tar.extractfile(f"{ref}/{RECORD}") if ref else None
            if record is None or len(ref) != _REF_LEN:
                raise UsageError(f"{src}: not a history bundle (no {RECORD})")
            data = json.loads(io.TextIOWrapper(record, encoding="utf-8").read())
            if data.get("ref") != ref:
                raise UsageError(f"{src}: the bundle's record names another build")
            if self.path(ref).exists():
                raise UsageError(f"build {ref} is already in the history")
            staging = self.dir / f".import-{new_ref()}"
            staging.mkdir(parents=True)
            try:
                tar.extractall(staging, filter="data")
                os.replace(staging / ref, self.path(ref))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return ref


def pick(records: list[dict[str, Any]], ref: str | None) -> dict[str, Any]:
    """The record ``ref`` names among ``records`` (newest first): a whole ref, a unique
    prefix, ``^N`` (the Nth before the newest) or nothing (the newest)."""
    if not records:
        raise UserError("no builds in the history yet",
                        hint="builds are recorded as they run: run `bkpy build` first")
    if ref is None or ref == "":
        return records[0]
    if ref.startswith("^") and ref[1:].isdigit():
        n = int(ref[1:])
        if n >= len(records):
            raise UserError(f"history has {len(records)} builds: no {ref}")
        return records[n]
    found = [r for r in records if str(r["ref"]).startswith(ref)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"no build {ref!r} in the history",
                        hint="`bkpy history ls` lists the builds it has")
    raise UserError(f"{ref!r} names {len(found)} builds", hint="give more of the ref")


_FILES = re.compile(r"^(record\.json|Dockerfile|events\.jsonl|logs/[0-9]+\.log"
                    r"|failed/rootfs\.tar)$")


def check_file(rel: str) -> None:
    """Only the files a build's folder holds can be read (never a path outside it)."""
    if not _FILES.match(rel):
        raise UsageError(f"no history file {rel!r}")


def check_ref(ref: str) -> None:
    """A build's ref names one folder of the history, nothing else."""
    if len(ref) != _REF_LEN or any(c not in _REF_CHARS for c in ref):
        raise UsageError(f"{ref!r} is not a build ref")
