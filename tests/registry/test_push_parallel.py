"""Several layers in flight at once when an image is pushed."""

from __future__ import annotations

from collections.abc import Callable

from buildkit_py.content import ContentStore
from buildkit_py.registry import RegistryClient
from tests.registry.fixtures import Proxy, RegistryServer, make_image

MiB = 1 << 20


def test_layers_upload_concurrently(
    registry: RegistryServer, client: RegistryClient, store: ContentStore,
    make_proxy: Callable[[str], Proxy],
) -> None:
    image = make_image(store, layer_sizes=(4 * MiB, 4 * MiB, 4 * MiB))
    proxy = make_proxy(registry.host)
    client.push(f"{proxy.host}/parallel/img:v1", store, image.manifest)
    uploads = [(m, p) for m, p in proxy.requests if "/blobs/uploads/" in p]
    first_done = next(i for i, (m, p) in enumerate(uploads) if m == "PUT" and "digest=" in p)
    started_before = [m for m, _ in uploads[:first_done] if m == "POST"]
    assert client.max_workers >= 2
    assert len(started_before) >= 2  # a second upload began before the first finished
    assert len([m for m, p in uploads if m == "PUT" and "digest=" in p]) == 4  # 3 + config
