"""A blob upload fed while the blob is still being made, and why it is only best effort.

A new layer is compressed when its image leaves the builder, and a push then uploads it:
two passes of the same size, one after the other. When the exporter knows the image is
going to a registry, it opens one of these beside the content store writer and tees the
compressed bytes into it, so the upload runs while deflate does: one PATCH whose body is
the bytes as they come (chunked, no length known), then, once the exporter knows the
digest, the PUT that commits it. The registry hashes what it received and refuses a
digest that does not match, so a blob is only ever committed as the bytes the store
holds.

Anything going wrong (the registry refuses, asks to authenticate again and so wants the
body resent, the connection drops) only marks the upload as failed and cancels it: the
push that follows finds the blob missing in the registry and uploads it from the content
store as it always does. The bytes are never held back: a failed upload drops what it is
given, and a slow one holds at most ``QUEUE_CHUNKS`` chunks before the writer waits.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import closing

from buildkit_py.registry.errors import RegistryError
from buildkit_py.registry.hosts import Endpoint
from buildkit_py.registry.lean_httpx import httpx
from buildkit_py.registry.transport import Transport

QUEUE_CHUNKS = 8  # compressed chunks waiting for the socket (each up to ~1 MiB)

_log = logging.getLogger(__name__)


def upload_location(resp: httpx.Response) -> str:
    """The absolute URL an upload continues at (its ``Location`` header)."""
    location = resp.headers.get("location")
    if not location:
        raise RegistryError(f"registry sent no upload location for {resp.request.url}")
    return str(resp.url.join(location))


def with_digest(location: str, digest: str) -> str:
    """An upload URL with the ``digest`` parameter that commits it."""
    return str(httpx.URL(location).copy_merge_params({"digest": digest}))


class StreamedUpload:
    """An upload session fed by :meth:`write`, committed by :meth:`finish`; :meth:`wait`
    tells whether the registry now has the blob. Its thread starts the session (POST to
    ``uploads``) while the first bytes are being made, so the registry's answer is not
    waited for before deflate starts; until then the bytes wait in the queue."""

    def __init__(self, transport: Transport, endpoint: Endpoint, scopes: tuple[str, ...],
                 uploads: str, name: str) -> None:
        self._transport = transport
        self._ep = endpoint
        self._scopes = scopes
        self._uploads = uploads
        self._location: str | None = None
        self._name = name
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._digest: str | None = None
        self._failed = False
        self._ended = False  # the end marker was taken off the queue
        self._committed = False
        self._thread = threading.Thread(target=self._run, name="bkpy-streamed-upload",
                                        daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        if data and not self._failed:
            self._q.put(bytes(data))

    def finish(self, digest: str | None) -> None:
        """The blob is complete and hashes to ``digest`` (None: abandon the upload)."""
        self._digest = digest
        self._q.put(None)

    def wait(self) -> bool:
        """Block until the upload has ended; True if the registry committed the blob."""
        self._thread.join()
        return self._committed

    # the upload thread -------------------------------------------------------------

    def _body(self) -> Iterator[bytes]:
        while (chunk := self._q.get()) is not None:
            yield chunk
        self._ended = True

    def _run(self) -> None:
        calls = 0

        def body() -> Iterator[bytes]:
            nonlocal calls
            calls += 1
            if calls > 1:  # an auth challenge or retry would need the bytes again
                raise RegistryError("streamed upload cannot be resent")
            return self._body()

        try:
            resp = self._transport.request(self._ep, "POST", self._uploads,
                                           scopes=self._scopes, content=b"", retry=False)
            with closing(resp):
                if resp.status_code != 202:
                    raise RegistryError(f"POST answered HTTP {resp.status_code}")
                self._location = upload_location(resp)
            resp = self._transport.request(
                self._ep, "PATCH", self._location, scopes=self._scopes, content=body,
                headers={"Content-Type": "application/octet-stream"}, retry=False)
            with closing(resp):
                if resp.status_code != 202:
                    raise RegistryError(f"PATCH answered HTTP {resp.status_code}")
                location = upload_location(resp)
            if self._digest is None:
                raise RegistryError("the blob was not finished")
            resp = self._transport.request(
                self._ep, "PUT", with_digest(location, self._digest), scopes=self._scopes,
                content=b"", headers={"Content-Type": "application/octet-stream"},
                retry=False)
            with closing(resp):
                if resp.status_code != 201:
                    raise RegistryError(f"PUT answered HTTP {resp.status_code}")
            self._committed = True
        except (RegistryError, httpx.HTTPError, OSError) as err:
            self._fail(err)

    def _fail(self, err: BaseException) -> None:
        self._failed = True
        _log.debug("streamed upload to %s failed (the push will upload from the store): %s",
                   self._name, err)
        # drain so the writer never blocks on a dead upload
        while not self._ended:
            self._ended = self._q.get() is None
        if self._location is None:
            return  # no session was started
        try:
            self._transport.request(self._ep, "DELETE", self._location, scopes=self._scopes,
                                    retry=False).close()
        except (RegistryError, httpx.HTTPError, OSError):
            pass  # the registry expires abandoned uploads anyway
