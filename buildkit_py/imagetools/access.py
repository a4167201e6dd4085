"""What imagetools talks to: registries (with the builder config's ``[registry."host"]``
settings and docker's credentials) and the builder's local content and image stores.

Everything is opened on first use: ``inspect`` of a registry image never touches the state
directory, and ``inspect --local`` never imports the HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildkit_py.config import BuilderConfig, load_config
from buildkit_py.content.images import ImageStore
from buildkit_py.content.store import ContentStore

if TYPE_CHECKING:
    from buildkit_py.registry.client import RegistryClient


def registry_client(config: BuilderConfig) -> RegistryClient:
    """A registry client configured like the builder's (same hosts, mirrors, TLS)."""
    # reason: the registry client imports httpx (~70 ms): not for --local reads
    from buildkit_py.registry import RegistryClient, RegistryHostConfig

    # ``http = false`` in the config file is the default, i.e. "automatic" (loopback: HTTP).
    hosts = {h: RegistryHostConfig(http=c.http or None, insecure=c.insecure,
                                   ca=tuple(c.ca), mirrors=tuple(c.mirrors),
                                   keypairs=tuple(c.keypairs))
             for h, c in config.registries.items()}
    return RegistryClient(hosts)


class Access:
    """Lazily opened registry client and local stores; close() what was opened."""

    def __init__(self, config: BuilderConfig | None = None) -> None:
        self._config = config
        self._registry: RegistryClient | None = None
        self._content: ContentStore | None = None
        self._images: ImageStore | None = None

    @property
    def config(self) -> BuilderConfig:
        if self._config is None:
            self._config = load_config()
        return self._config

    @property
    def registry(self) -> RegistryClient:
        if self._registry is None:
            self._registry = registry_client(self.config)
        return self._registry

    @property
    def content(self) -> ContentStore:
        if self._content is None:
            self._content = ContentStore(self.config.root / "content")
        return self._content

    @property
    def images(self) -> ImageStore:
        if self._images is None:
            self._images = ImageStore(self.config.root / "images", self.content)
        return self._images

    def close(self) -> None:
        if self._images is not None:
            self._images.close()
        if self._content is not None:
            self._content.close()
        if self._registry is not None:
            self._registry.close()

    def __enter__(self) -> Access:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
