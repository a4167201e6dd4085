"""The OCI image config a stage builds up alongside its LLB: config fields and history.

Kept as plain JSON-shaped data (``dict``) so base image configs pass through with every
field they carry; the helpers below implement BuildKit's update rules.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from buildkit_py.platforms import Platform

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HISTORY_COMMENT = "buildkit.dockerfile.v0"


def _copy_value(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return {k: _copy_value(v) for k, v in value.items()}
    return value


def format_epoch(epoch: int) -> str:
    """RFC 3339 UTC time of Unix seconds ``epoch``, as Go's time.Time marshals it."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ImageConfig:
    """A mutable image config; ``to_json()`` gives the result without rootfs/created."""

    __slots__ = ("base", "data")

    def __init__(self, data: dict[str, Any], base: dict[str, Any] | None = None) -> None:
        self.data = data
        # The base image's config as resolved (never changed): under rewrite-timestamp the
        # exporter keeps the base's layers and history entries as they are.
        self.base = base

    @classmethod
    def empty(cls, platform: Platform) -> ImageConfig:
        """The config of ``FROM scratch``: workdir ``/`` and a default PATH."""
        data: dict[str, Any] = {"architecture": platform.architecture, "os": platform.os}
        if platform.variant:
            data["variant"] = platform.variant
        if platform.os_version:
            data["os.version"] = platform.os_version
        data["config"] = {"Env": [f"PATH={DEFAULT_PATH}"], "WorkingDir": "/"}
        return cls(data)

    @classmethod
    def from_base(cls, config: dict[str, Any]) -> ImageConfig:
        """A base image's config as the start of a stage (``created`` is dropped)."""
        data = copy.deepcopy(config)
        data.pop("created", None)
        data.pop("rootfs", None)
        if not isinstance(data.get("config"), dict):
            data["config"] = {}
        return cls(data, copy.deepcopy(config))

    def clone(self) -> ImageConfig:
        """A copy that can change independently. Only the containers this class mutates
        are copied (history entries are never changed once written)."""
        data = dict(self.data)
        if isinstance(data.get("history"), list):
            data["history"] = list(data["history"])
        config = data.get("config")
        if isinstance(config, dict):
            data["config"] = {k: _copy_value(v) for k, v in config.items()}
        return ImageConfig(data, self.base)

    @property
    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = self.data.setdefault("config", {})
        return cfg

    @property
    def os(self) -> str:
        return str(self.data.get("os") or "linux")

    # ------------------------------------------------------------------ env

    def env(self) -> list[str]:
        env = self.config.get("Env") or []
        return [str(e) for e in env]

    def env_items(self) -> list[tuple[str, str]]:
        out = []
        for item in self.env():
            key, _, value = item.partition("=")
            out.append((key, value))
        return out

    def get_env(self, key: str) -> str | None:
        for k, v in self.env_items():
            if self._same_key(k, key):
                return v
        return None

    def set_env(self, key: str, value: str) -> None:
        """Replace ``key`` in place (order kept) or append it."""
        env = self.env()
        for i, item in enumerate(env):
            if self._same_key(item.partition("=")[0], key):
                env[i] = f"{key}={value}"
                break
        else:
            env.append(f"{key}={value}")
        self.config["Env"] = env

    def _same_key(self, a: str, b: str) -> bool:
        # Windows env keys are case-insensitive, Linux ones are not.
        return a.upper() == b.upper() if self.os == "windows" else a == b

    def ensure_path(self) -> None:
        """Add the default PATH when the base image has none (not on Windows)."""
        if self.os != "windows" and self.get_env("PATH") is None:
            self.set_env("PATH", DEFAULT_PATH)

    # ------------------------------------------------------------------ other fields

    def set_platform(self, platform: Platform) -> None:
        self.data["architecture"] = platform.architecture
        self.data["os"] = platform.os
        for key, value in (("variant", platform.variant), ("os.version", platform.os_version)):
            if value:
                self.data[key] = value
            else:
                self.data.pop(key, None)

    def set_field(self, key: str, value: Any) -> None:
        """Set a ``config`` field; None removes it (Go's omitempty)."""
        if value is None:
            self.config.pop(key, None)
        else:
            self.config[key] = value

    def add_keys(self, key: str, names: list[str]) -> None:
        """Add ``names`` to a set-like field (``ExposedPorts``, ``Volumes``)."""
        current = self.config.get(key)
        if not isinstance(current, dict):
            current = {}
        for name in names:
            current[name] = {}
        self.config[key] = current

    def set_labels(self, labels: dict[str, str]) -> None:
        current = self.config.get("Labels")
        if not isinstance(current, dict):
            current = {}
        current.update(labels)
        self.config["Labels"] = current

    def onbuild(self) -> list[str]:
        return [str(t) for t in (self.config.get("OnBuild") or [])]

    # ------------------------------------------------------------------ history

    def commit(self, created_by: str, *, layer: bool, buildkit: bool, epoch: int | None) -> None:
        """Append a history entry (``# buildkit`` marks entries made by an LLB op)."""
        entry: dict[str, Any] = {}
        if epoch is not None:
            entry["created"] = format_epoch(epoch)
        entry["created_by"] = created_by + (" # buildkit" if buildkit else "")
        entry["comment"] = HISTORY_COMMENT
        if not layer:
            entry["empty_layer"] = True
        history = self.data.get("history")
        if not isinstance(history, list):
            history = []
        history.append(entry)
        self.data["history"] = history

    def to_json(self) -> dict[str, Any]:
        out = copy.deepcopy(self.data)
        out.pop("created", None)
        out.pop("rootfs", None)
        return out
