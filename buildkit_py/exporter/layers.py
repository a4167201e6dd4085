"""Layer blobs of a snapshot chain, each compressed once and remembered.

A committed snapshot is immutable, so its blob for one (compression, level,
epoch, deflate engine) is computed once and found again by key on later exports: a
re-export or re-push of an unchanged image compresses nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from buildkit_py import sqlitedb
from buildkit_py.content.store import ContentStore
from buildkit_py.exporter.manifest import layer_media_type
from buildkit_py.snapshot import (
    Compression,
    DBSnapshotter,
    HashingWritable,
    Writable,
    deflate,
)

# Snapshot label of a layer unpacked from an imported cache: when the layer was first
# made (Unix seconds); an image made from the snapshot dates its history entry so.
CREATED_LABEL = "bkpy.createdat"


def snapshot_created(sn: DBSnapshotter, key: str) -> float:
    """When the layer of snapshot ``key`` was made: its label, else its creation time."""
    info = sn.stat(key)
    try:
        return float(info.labels[CREATED_LABEL])
    except (KeyError, ValueError):
        return info.created


# A smaller layer is uploaded whole by the push (HEAD, POST, PUT) rather than streamed
# while compressed (POST, PATCH, PUT, then the push's HEAD): one round trip fewer.
STREAM_MIN_SIZE = 1 << 20

# Bump when the bytes of exported layer tars change (tar_header, layer_tar, diff).
TAR_FORMAT = "go1"
_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS layers (k TEXT PRIMARY KEY, digest TEXT, size INTEGER,"
               " diff_id TEXT, compression TEXT)",)


@dataclass(frozen=True)
class LayerBlob:
    digest: str
    size: int
    diff_id: str
    media_type: str
    compression: str


@dataclass(frozen=True)
class ExportOptions:
    compression: str = "gzip"
    level: int | None = None
    force_compression: bool = False
    oci_mediatypes: bool = True
    source_date_epoch: int | None = None  # set only with rewrite-timestamp=true


class BlobSink(Protocol):
    """Where a new blob's bytes also go while it is made (a streamed registry upload)."""

    def write(self, data: bytes) -> None: ...

    def finish(self, digest: str | None) -> None:
        """The blob is complete as ``digest`` (None: it was not made)."""


class _Tee:
    """The bytes for a content-store writer, also to ``sink``; hashed by the former."""

    def __init__(self, store_writer: HashingWritable, sink: Writable) -> None:
        self._w = store_writer
        self._sink = sink

    @property
    def digest(self) -> str:
        return self._w.digest

    def write(self, data: bytes) -> object:
        n = self._w.write(data)
        self._sink.write(data)
        return n


def media_type_for(compression: str, oci: bool) -> str:
    return layer_media_type(compression, oci)


class LayerCache:
    """snapshot key + export options -> blob, persisted beside the content store; the
    database is opened on first use (a build without exports or pulls never opens it)."""

    def __init__(self, path: Path) -> None:
        self._file = sqlitedb.LazyDatabase(path, _MIGRATIONS)
        self._lock = threading.Lock()

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection (the caller holds ``_lock``)."""
        return self._file.conn()

    @staticmethod
    def _k(snapshot: str, opts: ExportOptions) -> str:
        # the last parts name the tar encoding and (for gzip at its default level) the
        # deflate engine: blobs of another encoding or engine are not reused
        key = f"{snapshot}|{opts.compression}|{opts.level}|{opts.source_date_epoch}|{TAR_FORMAT}"
        if opts.compression == "gzip" and opts.level is None:
            key += f"|{deflate.engine_name()}"
        return key

    def get(self, snapshot: str, opts: ExportOptions) -> tuple[str, int, str, str] | None:
        with self._lock:
            row = self._db.execute("SELECT digest, size, diff_id, compression FROM layers "
                                   "WHERE k=?", (self._k(snapshot, opts),)).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def put(self, snapshot: str, opts: ExportOptions, digest: str, size: int, diff_id: str,
            compression: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO layers VALUES (?, ?, ?, ?, ?)",
                             (self._k(snapshot, opts), digest, size, diff_id, compression))

    def put_source(self, snapshot: str, digest: str, size: int, diff_id: str,
                   compression: str) -> None:
        """Remember the blob a snapshot was unpacked from (a pulled image layer)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO layers VALUES (?, ?, ?, ?, ?)",
                             (f"{snapshot}|source", digest, size, diff_id, compression))

    def get_source(self, snapshot: str) -> tuple[str, int, str, str] | None:
        with self._lock:
            row = self._db.execute("SELECT digest, size, diff_id, compression FROM layers "
                                   "WHERE k=?", (f"{snapshot}|source",)).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def entries(self) -> list[tuple[str, str]]:
        """Every remembered (snapshot key, blob digest) pair, for garbage collection."""
        with self._lock:
            rows = self._db.execute("SELECT k, digest FROM layers").fetchall()
        return [(k.split("|", 1)[0], digest) for k, digest in rows]

    def forget(self, digests: set[str]) -> None:
        """Drop the entries of these blobs (removed as corrupted): exports re-make them."""
        with self._lock:
            self._db.executemany("DELETE FROM layers WHERE digest=?",
                                 [(d,) for d in sorted(digests)])

    def close(self) -> None:
        with self._lock:
            self._file.close()


def export_chain(sn: DBSnapshotter, store: ContentStore, cache: LayerCache,
                 keys: list[str], opts: ExportOptions, *,
                 base_diff_ids: list[str] | None = None,
                 sink: Callable[[], BlobSink | None] | None = None) -> list[LayerBlob]:
    """Blobs for each snapshot in ``keys`` (bottom first): :func:`export_chains` of one."""
    return export_chains(sn, store, cache, [(keys, base_diff_ids or [])], opts, sink=sink)[0]


def export_chains(sn: DBSnapshotter, store: ContentStore, cache: LayerCache,
                  chains: Sequence[tuple[Sequence[str], Sequence[str]]], opts: ExportOptions,
                  *, sink: Callable[[], BlobSink | None] | None = None
                  ) -> list[list[LayerBlob]]:
    """Blobs for each chain of snapshot keys (bottom first, with the diff_ids of its base
    image), the layers they lack all compressed at once, in parallel: a multi-platform
    image's platforms overlap their compression (and their streamed uploads).

    With ``source_date_epoch`` (rewrite-timestamp) the layers are rewritten, except the
    bottom ones that are still the base image's: BuildKit keeps those as they are, so
    they stay shared with the base image. ``sink`` gives, for each blob this call makes,
    where its bytes go too as they are made (a push's streamed upload; None: nowhere)."""
    def cached(key: str, opts: ExportOptions) -> LayerBlob | None:
        hit = None
        if not opts.force_compression and opts.source_date_epoch is None:
            # a pulled base layer keeps its original blob (and so its digest)
            hit = cache.get_source(key)
            if hit is not None and hit[3] == "zstd" and not opts.oci_mediatypes:
                hit = None
            # a layer unpacked from the (uncompressed) local store is compressed when it
            # leaves the builder, as BuildKit converts uncompressed blobs
            if hit is not None and hit[3] == "uncompressed" and opts.compression != hit[3]:
                hit = None
        if hit is None:
            hit = cache.get(key, opts)
        if hit is not None and store.has(hit[0]):
            digest, size, diff_id, comp = hit
            return LayerBlob(digest, size, diff_id, media_type_for(comp, opts.oci_mediatypes),
                             comp)
        return None

    def make(key: str, opts: ExportOptions) -> LayerBlob:
        tee = (sink() if sink is not None and sn.usage(key).size >= STREAM_MIN_SIZE
               else None)
        digest = None
        try:
            with store.writer() as w:
                desc = sn.export_layer(key, w if tee is None else _Tee(w, tee),
                                       compression=Compression(opts.compression),
                                       level=opts.level,
                                       source_date_epoch=opts.source_date_epoch)
            digest = desc.digest
        finally:
            if tee is not None:
                tee.finish(digest)
        store.update_labels(desc.digest, {"containerd.io/uncompressed": desc.diff_id})
        cache.put(key, opts, desc.digest, desc.size, desc.diff_id, opts.compression)
        return LayerBlob(desc.digest, desc.size, desc.diff_id,
                         media_type_for(opts.compression, opts.oci_mediatypes), opts.compression)

    plain = replace(opts, source_date_epoch=None)
    wanted: list[list[tuple[str, ExportOptions]]] = []
    for keys, base_diff_ids in chains:
        layer_opts = {k: opts for k in keys}
        if opts.source_date_epoch is not None:
            for key, base_diff_id in zip(keys, base_diff_ids, strict=False):
                source = cache.get_source(key)  # the diff_id of the blob it was unpacked from
                diff_id = (source[2] if source
                           else (cached(key, plain) or make(key, plain)).diff_id)
                if diff_id != base_diff_id:
                    break
                layer_opts[key] = plain
        wanted.append(list(layer_opts.items()))
    # one entry per (snapshot, options): a layer two platforms share is made once
    blobs = {item: cached(*item) for chain in wanted for item in chain}
    missing = [item for item, blob in blobs.items() if blob is None]
    if len(missing) == 1:
        blobs[missing[0]] = make(*missing[0])
    elif missing:  # a pool only when there is compression to overlap
        with ThreadPoolExecutor(max_workers=min(4, len(missing))) as pool:
            blobs.update(zip(missing, pool.map(lambda item: make(*item), missing),
                             strict=True))
    return [[b for b in (blobs[item] for item in chain) if b is not None] for chain in wanted]
