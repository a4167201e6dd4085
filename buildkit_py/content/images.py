"""The local image store: image names pointing at manifests/indexes in the content store.

Images arrive by ``--load`` or ``bkpy image import`` (OCI layout or docker-save
tarballs, or folders) and can then be used by ``FROM`` without a registry.
"""

from __future__ import annotations

import json
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_py import sqlitedb
from buildkit_py.content.store import ContentStore
from buildkit_py.errors import UserError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS images (name TEXT PRIMARY KEY, media_type TEXT, "
               "digest TEXT, size INTEGER, created REAL)",)


class ImageNotFoundError(UserError):
    pass


@dataclass(frozen=True)
class ImageRecord:
    name: str
    media_type: str
    digest: str
    size: int
    created: float


class ImageStore:
    def __init__(self, root: Path, content: ContentStore) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.content = content
        self._db = sqlitedb.open_db(root / "images.db", _MIGRATIONS)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def put(self, name: str, media_type: str, digest: str, size: int,
            created: float | None = None) -> ImageRecord:
        """Name the image; a name that already names it keeps its record untouched (and
        when it was stored, as an unchanged rebuild keeps an image's age in docker): no
        write, so a no-op ``--load`` leaves the database's log empty and its close cheap."""
        with self._lock:
            row = self._db.execute("SELECT name, media_type, digest, size, created FROM images"
                                   " WHERE name=?", (name,)).fetchone()
            if (row is not None and tuple(row[1:4]) == (media_type, digest, size)
                    and created in (None, row[4])):
                return ImageRecord(*row)
            rec = ImageRecord(name, media_type, digest, size,
                              time.time() if created is None else created)
            self._db.execute("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?)",
                             (rec.name, rec.media_type, rec.digest, rec.size, rec.created))
        return rec

    def get(self, name: str) -> ImageRecord | None:
        with self._lock:
            row = self._db.execute("SELECT name, media_type, digest, size, created FROM images "
                                   "WHERE name=?", (name,)).fetchone()
        return None if row is None else ImageRecord(*row)

    def all(self) -> list[ImageRecord]:
        with self._lock:
            rows = self._db.execute("SELECT name, media_type, digest, size, created FROM images "
                                    "ORDER BY name").fetchall()
        return [ImageRecord(*r) for r in rows]

    def remove(self, name: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM images WHERE name=?", (name,))
        return cur.rowcount > 0

    def referenced(self) -> set[str]:
        """Every blob reachable from a stored image (for garbage collection)."""
        out: set[str] = set()
        for rec in self.all():
            self._walk(rec.digest, out)
        return out

    def _walk(self, digest: str, out: set[str]) -> None:
        if digest in out or not self.content.has(digest):
            return
        out.add(digest)
        try:
            doc = json.loads(self.content.read(digest))
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(doc, dict):
            return
        for m in doc.get("manifests", []):
            self._walk(m["digest"], out)
        if "config" in doc:
            out.add(doc["config"]["digest"])
        for layer in doc.get("layers", []):
            out.add(layer["digest"])

    # import -----------------------------------------------------------------

    def import_archive(self, path: Path, name: str) -> ImageRecord:
        """Import an OCI layout (tar or folder) or a docker-save tarball as ``name``."""
        if path.is_dir():
            return self._import_layout_dir(path, name)
        try:
            tf = tarfile.open(path)
        except (OSError, tarfile.TarError) as err:
            raise UserError(f"cannot read image archive {path}: {err}",
                            hint="give an OCI layout or `docker save` tarball") from None
        with tf:
            members = {m.name.removeprefix("./"): m for m in tf.getmembers() if m.isfile()}

            def read(member: str) -> bytes:
                m = members.get(member)
                if m is None:
                    raise UserError(f"{path}: {member} is missing from the archive")
                f = tf.extractfile(m)
                assert f is not None
                return f.read()

            for mname, m in members.items():
                if mname.startswith("blobs/sha256/"):
                    digest = "sha256:" + mname.rsplit("/", 1)[1]
                    if not self.content.has(digest):
                        f = tf.extractfile(m)
                        assert f is not None
                        with self.content.writer(digest, m.size) as w:
                            while chunk := f.read(1 << 20):
                                w.write(chunk)
            if "index.json" in members:
                return self._from_index(json.loads(read("index.json")), name, path)
            if "manifest.json" in members:
                return self._from_docker_manifest(json.loads(read("manifest.json")), name, read)
        raise UserError(f"{path} is neither an OCI layout nor a docker-save archive")

    def _import_layout_dir(self, root: Path, name: str) -> ImageRecord:
        index = root / "index.json"
        if not index.is_file():
            raise UserError(f"{root} is not an OCI layout (no index.json)")
        for blob in (root / "blobs" / "sha256").iterdir():
            digest = "sha256:" + blob.name
            if not self.content.has(digest):
                with open(blob, "rb") as f, self.content.writer(digest) as w:
                    while chunk := f.read(1 << 20):
                        w.write(chunk)
        return self._from_index(json.loads(index.read_text()), name, root)

    def _from_index(self, index: dict[str, Any], name: str, where: Path) -> ImageRecord:
        manifests = index.get("manifests") or []
        if not manifests:
            raise UserError(f"{where}: index.json lists no image")
        if len(manifests) == 1:
            d = manifests[0]
            return self.put(name, d["mediaType"], d["digest"], d["size"])
        # several entries: keep them all behind one index of our own
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": manifests}, separators=(",", ":")).encode()
        digest = self.content.write(data)
        return self.put(name, OCI_INDEX, digest, len(data))

    def _from_docker_manifest(self, doc: list[dict[str, Any]], name: str,
                              read: Any) -> ImageRecord:
        """Rebuild an OCI manifest from a ``docker save`` manifest.json entry."""
        if not doc:
            raise UserError("manifest.json lists no image")
        entry = doc[0]
        config = read(entry["Config"])
        config_digest = self.content.write(config)
        layers = []
        for layer_path in entry["Layers"]:
            data = read(layer_path)
            digest = self.content.write(data)
            media = "application/vnd.oci.image.layer.v1.tar+gzip" if data[:2] == b"\x1f\x8b" \
                else "application/vnd.oci.image.layer.v1.tar"
            layers.append({"mediaType": media, "digest": digest, "size": len(data)})
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": config_digest, "size": len(config)},
                    "layers": layers}
        data = json.dumps(manifest, separators=(",", ":")).encode()
        digest = self.content.write(data)
        return self.put(name, OCI_MANIFEST, digest, len(data))
