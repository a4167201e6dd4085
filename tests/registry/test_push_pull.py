"""Push and pull against the real distribution registry (anonymous)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from buildkit_py.content import ContentStore
from buildkit_py.errors import UserError
from buildkit_py.registry import (
    BlobProgress,
    DigestMismatchError,
    NotFoundError,
    PlatformNotFoundError,
    RegistryClient,
    RegistryUnavailableError,
    StaticCredentials,
    parse_platform,
)
from buildkit_py.registry import mediatypes as mt
from tests.registry.fixtures import (
    FAST_RETRY,
    BuiltImage,
    Proxy,
    RegistryServer,
    make_image,
    make_index,
)

MiB = 1 << 20


def _assert_same_blobs(a: ContentStore, b: ContentStore, image: BuiltImage) -> None:
    for desc in (image.manifest, *image.blobs):
        assert b.read(desc.digest) == a.read(desc.digest)


def test_pushed_image_pulls_back_byte_identical(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    other_store: ContentStore,
) -> None:
    image = make_image(store)
    ref = f"{registry.host}/roundtrip/img:v1"
    events: list[BlobProgress] = []
    pushed = client.push(ref, store, image.manifest, progress=events.append)
    assert pushed.digest == image.manifest.digest
    assert {e.digest for e in events if e.status == "done"} == {d.digest for d in image.blobs}

    events.clear()
    pulled = client.pull(ref, other_store, "linux/amd64", progress=events.append)
    assert pulled.manifest.digest == image.manifest.digest
    assert pulled.root.digest == image.manifest.digest
    assert pulled.config == image.config
    assert list(pulled.layers) == image.layers
    assert pulled.config_bytes == store.read(image.config.digest)
    _assert_same_blobs(store, other_store, image)
    done = {e.digest: e for e in events if e.status == "done"}
    assert set(done) == {d.digest for d in image.blobs}
    assert all(e.done == e.total for e in done.values())

    desc, body = client.resolve(ref)
    assert desc.digest == image.manifest.digest
    assert body == store.read(image.manifest.digest)
    assert client.resolve_digest(ref).digest == image.manifest.digest
    assert client.fetch_blob(ref, image.config) == store.read(image.config.digest)


def test_pulling_again_fetches_nothing_already_stored(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    make_proxy: Callable[[str], Proxy],
) -> None:
    image = make_image(store)
    client.push(f"{registry.host}/again/img:v1", store, image.manifest)
    proxy = make_proxy(registry.host)
    events: list[BlobProgress] = []
    client.pull(f"{proxy.host}/again/img:v1", store, "linux/amd64", progress=events.append)
    assert proxy.methods("/blobs/") == []
    assert {e.status for e in events} == {"exists"}


def test_pushing_an_unchanged_image_uploads_no_blob_bytes(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    make_proxy: Callable[[str], Proxy],
) -> None:
    proxy = make_proxy(registry.host)
    image = make_image(store)
    ref = f"{proxy.host}/unchanged/img:v1"
    client.push(ref, store, image.manifest)
    assert proxy.methods("/blobs/uploads/").count("POST") == len(image.blobs)

    proxy.requests.clear()
    events: list[BlobProgress] = []
    client.push(ref, store, image.manifest, progress=events.append)
    blob_requests = [(m, p) for m, p in proxy.requests if "/blobs/" in p]
    assert blob_requests and all(m == "HEAD" for m, _ in blob_requests)
    assert len(blob_requests) == len(image.blobs)
    # Only the tag is written again.
    assert [(m, p) for m, p in proxy.requests if m != "HEAD"] == [
        ("PUT", "/v2/unchanged/img/manifests/v1")
    ]
    assert {e.status for e in events} == {"exists"}


def test_multi_platform_index_push_then_resolve_by_platform(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    other_store: ContentStore, make_proxy: Callable[[str], Proxy],
) -> None:
    platforms = ["linux/amd64", "linux/arm64", "linux/arm/v6", "linux/arm/v7"]
    images = {p: make_image(store, layer_sizes=(500,), platform=parse_platform(p))
              for p in platforms}
    index = make_index(store, list(images.values()))
    proxy = make_proxy(registry.host)
    ref = f"{proxy.host}/multi/img:v1"
    client.push(ref, store, index, tags=("latest",))

    # Order: blobs (layers and configs together), manifests by digest, then the index by
    # each tag.
    writes = [(m, p) for m, p in proxy.requests if m in ("POST", "PUT")]
    kinds = []
    layer_digests = {d.digest for img in images.values() for d in img.layers}
    config_digests = {img.config.digest for img in images.values()}
    for method, path in writes:
        if method == "PUT" and "/manifests/" in path:
            kinds.append("index" if path.endswith(("/v1", "/latest")) else "manifest")
        elif method == "PUT":
            digest = path.split("digest=")[1].replace("%3A", ":")
            kinds.append("layer" if digest in layer_digests else
                         "config" if digest in config_digests else "?")
    rank = {"layer": 0, "config": 0, "manifest": 1, "index": 2}
    assert kinds == sorted(kinds, key=rank.__getitem__)
    assert set(kinds) == {"layer", "config", "manifest", "index"}
    assert kinds.count("manifest") == 4 and kinds.count("index") == 2

    desc, body = client.resolve(ref)
    assert desc.media_type == mt.OCI_INDEX and desc.digest == index.digest
    assert json.loads(body)["manifests"][1]["platform"]["architecture"] == "arm64"

    for want, got in [("linux/arm64", "linux/arm64"), ("linux/arm/v7", "linux/arm/v7"),
                      ("linux/arm/v8", "linux/arm/v7"), ("linux/arm/v6", "linux/arm/v6"),
                      ("linux/amd64", "linux/amd64")]:
        desc, body = client.resolve(f"{registry.host}/multi/img:latest", platform=want)
        assert desc.digest == images[got].manifest.digest, want
        assert str(desc.platform) == got
        assert body == store.read(images[got].manifest.digest)

    pulled = client.pull(f"{registry.host}/multi/img:v1", other_store, "linux/arm64")
    assert pulled.root.digest == index.digest
    assert pulled.manifest.digest == images["linux/arm64"].manifest.digest
    assert json.loads(pulled.config_bytes)["architecture"] == "arm64"
    assert other_store.has(index.digest)
    assert not other_store.has(images["linux/amd64"].layers[0].digest)

    with pytest.raises(PlatformNotFoundError) as info:
        client.resolve(ref, platform="linux/s390x")
    assert "linux/s390x" in info.value.message
    assert "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64" in info.value.message


def test_a_large_blob_goes_in_one_streamed_put(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    other_store: ContentStore, make_proxy: Callable[[str], Proxy],
) -> None:
    image = make_image(store, layer_sizes=(17 * MiB, 100))
    big = image.layers[0]
    proxy = make_proxy(registry.host)
    ref = f"{proxy.host}/whole/img:v1"
    events: list[BlobProgress] = []
    client.push(ref, store, image.manifest, progress=events.append)
    assert proxy.methods("/blobs/uploads/").count("PATCH") == 0
    puts = [p for m, p in proxy.requests if m == "PUT" and big.digest.split(":")[1] in p]
    assert len(puts) == 1
    uploading = [e.done for e in events if e.digest == big.digest and e.status == "uploading"]
    assert uploading and uploading == sorted(uploading) and uploading[-1] < big.size
    assert [e.status for e in events if e.digest == big.digest][-1] == "done"

    client.pull(f"{registry.host}/whole/img:v1", other_store, "linux/amd64")
    assert other_store.read(big.digest) == store.read(big.digest)


def test_blob_above_monolithic_max_is_uploaded_in_chunks(
    registry: RegistryServer, store: ContentStore,
    other_store: ContentStore, make_proxy: Callable[[str], Proxy],
) -> None:
    image = make_image(store, layer_sizes=(17 * MiB, 100))
    big = image.layers[0]
    assert big.size > 16 * MiB
    proxy = make_proxy(registry.host)
    ref = f"{proxy.host}/chunked/img:v1"
    events: list[BlobProgress] = []
    with RegistryClient(credentials=StaticCredentials({}), retry=FAST_RETRY,
                        chunk_size=8 * MiB, monolithic_max=8 * MiB) as client:
        client.push(ref, store, image.manifest, progress=events.append)
    patches = [p for m, p in proxy.requests if m == "PATCH"]
    assert len(patches) == 3  # 8 + 8 + 1 MiB
    finals = [p for m, p in proxy.requests if m == "PUT" and big.digest.split(":")[1] in p]
    assert len(finals) == 1
    uploading = [e.done for e in events if e.digest == big.digest and e.status == "uploading"]
    assert uploading == [8 * MiB, 16 * MiB, big.size]

    client.pull(f"{registry.host}/chunked/img:v1", other_store, "linux/amd64")
    assert other_store.read(big.digest) == store.read(big.digest)


def test_cross_repository_mount_skips_the_upload(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    make_proxy: Callable[[str], Proxy],
) -> None:
    image = make_image(store)
    client.push(f"{registry.host}/mount/base:v1", store, image.manifest)
    proxy = make_proxy(registry.host)
    events: list[BlobProgress] = []
    mounts = {d.digest: "mount/base" for d in image.layers}
    client.push(f"{proxy.host}/mount/app:v1", store, image.manifest, mount_from=mounts,
                progress=events.append)
    posts = [p for m, p in proxy.requests if m == "POST"]
    assert sum("mount=sha256" in p and "from=mount/base" in p for p in posts) == len(image.layers)
    assert [p for m, p in proxy.requests if m == "PATCH"] == []
    statuses = {e.digest: e.status for e in events}
    assert all(statuses[d.digest] == "mounted" for d in image.layers)
    assert statuses[image.config.digest] == "done"
    desc, _ = client.resolve(f"{registry.host}/mount/app:v1")
    assert desc.digest == image.manifest.digest


def test_corrupted_blob_is_refused_and_nothing_is_stored(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    tmp_path: Path,
) -> None:
    image = make_image(store, layer_sizes=(4000,))
    ref = f"{registry.host}/corrupt/img:v1"
    client.push(ref, store, image.manifest)
    layer = image.layers[0]
    data_path = registry.blob_data_path(layer.digest)
    data = bytearray(data_path.read_bytes())
    data[100] ^= 0xFF  # same size, different content
    data_path.write_bytes(bytes(data))

    fresh = ContentStore(tmp_path / "fresh")
    with pytest.raises(DigestMismatchError) as info:
        client.pull(ref, fresh, "linux/amd64")
    assert layer.digest in info.value.message
    assert "nothing was stored" in info.value.message
    assert not fresh.has(layer.digest)
    assert os.listdir(fresh.ingest_dir) == []


def test_truncated_or_oversized_blob_is_refused(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    make_proxy: Callable[[str], Proxy], tmp_path: Path,
) -> None:
    image = make_image(store, layer_sizes=(4000,))
    client.push(f"{registry.host}/sizes/img:v1", store, image.manifest)
    layer = image.layers[0]
    proxy = make_proxy(registry.host)
    for name, tamper in [("short", lambda b: b[:-1]), ("long", lambda b: b + b"x")]:
        proxy.body_hook = lambda m, p, b, t=tamper: t(b) if layer.digest in p else b
        fresh = ContentStore(tmp_path / name)
        with pytest.raises(DigestMismatchError) as info:
            client.pull(f"{proxy.host}/sizes/img:v1", fresh, "linux/amd64")
        assert layer.digest in info.value.message
        assert "expected 4" in info.value.message
        assert not fresh.has(layer.digest)


def test_tampered_manifest_is_refused(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    make_proxy: Callable[[str], Proxy],
) -> None:
    image = make_image(store)
    client.push(f"{registry.host}/tamper/img:v1", store, image.manifest)
    proxy = make_proxy(registry.host)
    proxy.body_hook = lambda m, p, b: b.replace(b'"schemaVersion": 2', b'"schemaVersion":2')
    with pytest.raises(DigestMismatchError):
        client.resolve(f"{proxy.host}/tamper/img@{image.manifest.digest}")
    with pytest.raises(DigestMismatchError):  # by tag: checked against Docker-Content-Digest
        client.resolve(f"{proxy.host}/tamper/img:v1")


def test_missing_tag_and_repository_are_plain_not_found_errors(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
) -> None:
    image = make_image(store)
    client.push(f"{registry.host}/present/img:v1", store, image.manifest)
    for ref in (f"{registry.host}/present/img:nope", f"{registry.host}/absent/img:1"):
        with pytest.raises(NotFoundError) as info:
            client.resolve(ref)
        assert info.value.message == f"not found: {ref}"
        assert "check the name and tag" in (info.value.hint or "")
        assert "Traceback" not in info.value.render()
    with pytest.raises(NotFoundError):
        client.resolve_digest(f"{registry.host}/present/img:nope")


def test_pushing_a_blob_missing_everywhere_names_it(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
) -> None:
    image = make_image(store)
    store.delete(image.layers[0].digest)
    with pytest.raises(UserError) as info:
        client.push(f"{registry.host}/missing/img:v1", store, image.manifest)
    assert image.layers[0].digest in info.value.message


@pytest.mark.parametrize("chunked", [False, True])
def test_flaky_registry_is_retried_with_backoff(
    registry: RegistryServer, store: ContentStore, chunked: bool,
    other_store: ContentStore, make_proxy: Callable[[str], Proxy],
) -> None:
    client = RegistryClient(credentials=StaticCredentials({}), retry=FAST_RETRY,
                            monolithic_max=8 * MiB if chunked else None)
    proxy = make_proxy(registry.host)
    seen: set[tuple[str, str]] = set()

    def first_fails(method: str, path: str) -> int | str | None:
        # Upload sessions get fresh URLs: count them as one path, or retries never end.
        key = (method, re.sub(r"/uploads/.*", "/uploads/", path.split("?")[0]))
        if key in seen or path == "/v2/":
            return None
        seen.add(key)
        # Every first attempt fails: a blob download is cut off halfway, an upload start
        # loses its connection without an answer, anything else gets a 503.
        if method == "GET" and "/blobs/" in path:
            return "cut"
        return "drop" if method == "POST" else 503

    proxy.fault = first_fails
    image = make_image(store, layer_sizes=(2000, 3000, 9 * MiB))
    ref = f"{proxy.host}/flaky/img-{int(chunked)}:v1"
    with client:
        client.push(ref, store, image.manifest)
        client.pull(ref, other_store, "linux/amd64")
    _assert_same_blobs(store, other_store, image)
    assert os.listdir(other_store.ingest_dir) == []
    faulted = {m for m, _ in seen}
    assert {"GET", "HEAD", "POST", "PUT"} <= faulted
    assert ("PATCH" in faulted) == chunked
    assert proxy.faults_served == len(seen)


def test_registry_that_keeps_failing_gives_up_after_bounded_attempts(
    registry: RegistryServer, client: RegistryClient, make_proxy: Callable[[str], Proxy],
) -> None:
    proxy = make_proxy(registry.host)
    proxy.fault = lambda method, path: 503
    with pytest.raises(RegistryUnavailableError) as info:
        client.resolve(f"{proxy.host}/down/img:v1")
    assert "503" in info.value.message
    assert len(proxy.requests) == FAST_RETRY.attempts


def test_unreachable_registry_is_a_plain_error(client: RegistryClient) -> None:
    from tests.registry.fixtures import free_port

    with pytest.raises(RegistryUnavailableError) as info:
        client.resolve(f"127.0.0.1:{free_port()}/x/y:1")
    assert "cannot reach registry" in info.value.message


def test_pulls_use_mirrors_first_and_fall_back_to_the_registry(
    registry: RegistryServer, make_registry: Callable[..., RegistryServer],
    store: ContentStore, tmp_path: Path, make_proxy: Callable[[str], Proxy],
) -> None:
    upstream = make_registry()
    mirror_proxy = make_proxy(registry.host)
    with RegistryClient(credentials=StaticCredentials({}), retry=FAST_RETRY) as plain:
        only_in_mirror = make_image(store)
        plain.push(f"{registry.host}/mirrored/img:v1", store, only_in_mirror.manifest)
        only_upstream = make_image(store)
        plain.push(f"{upstream.host}/upstream/img:v1", store, only_upstream.manifest)

    hosts = {upstream.host: {"mirrors": [mirror_proxy.host]}}
    with RegistryClient(hosts, StaticCredentials({}), retry=FAST_RETRY) as client:
        pulled = client.pull(f"{upstream.host}/mirrored/img:v1", ContentStore(tmp_path / "a"),
                             "linux/amd64")
        assert pulled.manifest.digest == only_in_mirror.manifest.digest
        assert mirror_proxy.methods("/blobs/").count("GET") == len(only_in_mirror.blobs)

        pulled = client.pull(f"{upstream.host}/upstream/img:v1", ContentStore(tmp_path / "b"),
                             "linux/amd64")
        assert pulled.manifest.digest == only_upstream.manifest.digest
        # asked the mirror first (a HEAD for the tag, as BuildKit), then the registry
        assert ("HEAD", "/v2/upstream/img/manifests/v1") in mirror_proxy.requests

        # Pushes never go to a mirror.
        mirror_proxy.requests.clear()
        client.push(f"{upstream.host}/pushed/img:v1", store, only_upstream.manifest)
        assert mirror_proxy.requests == []


def test_pulled_blobs_are_held_by_the_callers_lease(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    other_store: ContentStore,
) -> None:
    image = make_image(store)
    ref = f"{registry.host}/leased/img:v1"
    client.push(ref, store, image.manifest)
    with other_store.lease() as lease:
        client.pull(ref, other_store, "linux/amd64", lease=lease)
        assert other_store.gc(keep=[]).removed == []
    removed = other_store.gc(keep=[]).removed
    assert sorted(removed) == sorted(d.digest for d in (image.manifest, *image.blobs))


@pytest.mark.parametrize("chunked", [False, True])
def test_pushing_a_corrupted_blob_fails_and_commits_nothing(
    registry: RegistryServer, store: ContentStore, chunked: bool,
    make_proxy: Callable[[str], Proxy],
) -> None:
    from buildkit_py.content import CorruptContentError

    image = make_image(store, layer_sizes=(3 * MiB,))
    layer = image.layers[0].digest
    path = store.path(layer)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:  # flip a byte in the middle, in place
        f.seek(MiB)
        byte = f.read(1)[0]
        f.seek(MiB)
        f.write(bytes([byte ^ 0xFF]))
    proxy = make_proxy(registry.host)
    ref = f"{proxy.host}/corrupt/img-{int(chunked)}:v1"
    with RegistryClient(credentials=StaticCredentials({}), retry=FAST_RETRY,
                        chunk_size=MiB, monolithic_max=0 if chunked else 8 * MiB) as c, \
            pytest.raises(CorruptContentError) as info:
        c.push(ref, store, image.manifest)
    assert info.value.digest == layer
    assert "bkpy prune --corrupt" in (info.value.hint or "")
    uploads = [m for m, p in proxy.requests if "/blobs/uploads/" in p]
    # the layer's upload is the one cancelled (the config goes up beside it)
    session = {p.split("?")[0] for m, p in proxy.requests if m == "DELETE"}
    assert len(session) == 1
    layer_requests = [m for m, p in proxy.requests if p.split("?")[0] in session]
    # chunked: the chunks before the last went out, then the upload was cancelled
    chunks = -(-image.layers[0].size // MiB)
    assert layer_requests.count("PATCH") == (chunks - 1 if chunked else 0)
    # a whole-blob PUT stops before its last bytes: the registry never sees it complete
    assert uploads.count("PUT(cut)") == (0 if chunked else 1)
    assert not [p for m, p in proxy.requests if m == "PUT" and layer in p]
    assert not [p for m, p in proxy.requests if "/manifests/" in p and m == "PUT"]
