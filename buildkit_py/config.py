"""Locations (state root, client config directory) and the builder's TOML configuration.

The same file configures the embedded builder and ``bkpyd``::

    root = "/var/lib/bkpy"
    max-parallelism = 4
    oci-runtime = "bkpy-runc"        # or "runc", "crun", or a path

    [gc]
    keep-storage = "10GB"
    keep-duration = "168h"

    [cdi]                              # RUN --device: CDI specs of the host's devices
    spec-dirs = ["/etc/cdi", "/var/run/cdi", "/etc/buildkit/cdi"]
    auto-allowed = ["vendor.com/class"]   # usable without --allow device

    [http]                             # ADD https://... and other HTTP(S) sources
    ca = ["/etc/ssl/my-ca.pem"]        # CAs trusted besides the system's and certifi's

    [command-server]                   # the warm process behind `bkpy` (cli/autostart.py)
    auto-start = true                  # false: only `bkpy server start` starts it
    idle-timeout = "15m"               # an unused server exits after this ("0": never)

    [history]                          # recorded builds (`bkpy history`); 0: no limit
    max-entries = 50
    max-age = "48h"
    max-size = "1GB"                   # default: no limit

    [registry."localhost:5000"]
    http = true
    insecure = false
    ca = ["/etc/ssl/my-ca.pem"]
    mirrors = ["mirror.example:5000"]
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_py.errors import UsageError

DEFAULT_CONFIG_PATH = Path("/etc/bkpy/bkpyd.toml")
DEFAULT_RUNTIME = "bkpy-runc"


def default_state_root() -> Path:
    """State root: ``$BKPY_ROOT``, else /var/lib/bkpy as root, else $XDG_DATA_HOME/bkpy."""
    env = os.environ.get("BKPY_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/bkpy")
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(xdg) / "bkpy"


def client_config_dir() -> Path:
    """Client config (builders): ``$BKPY_CONFIG``, else $XDG_CONFIG_HOME/bkpy."""
    env = os.environ.get("BKPY_CONFIG")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(xdg) / "bkpy"


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
               "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(value: str | int) -> int:
    """``10GB``, ``512MiB``, ``1000`` -> bytes."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(value)
    if not m:
        raise UsageError(f"invalid size {value!r}", hint="use e.g. 512MB, 10GB or 2GiB")
    unit = (m.group(2) or "").lower().removesuffix("b")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int) -> float:
    """Go-style duration (``168h``, ``1h30m``) -> seconds."""
    if isinstance(value, int):
        return float(value)
    text = value.strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise UsageError(f"invalid duration {value!r}", hint="use e.g. 48h or 1h30m")
    return total


@dataclass
class RegistryHost:
    http: bool = False
    insecure: bool = False
    ca: list[str] = field(default_factory=list)
    mirrors: list[str] = field(default_factory=list)


def parse_idle_timeout(value: str | int) -> float:
    """A duration, or ``0`` for never."""
    if isinstance(value, int) or value.strip() == "0":
        return float(value)
    return parse_duration(value)


@dataclass
class GCPolicy:
    keep_storage: int | None = None
    keep_duration: float | None = None


# What a build may ask for with --allow; the builder grants only what its config lists.
ENTITLEMENTS = ("network.host", "security.insecure", "device")


def check_entitlement(value: str, where: str) -> str:
    """``network.host``, ``security.insecure``, ``device`` (every CDI device) or
    ``device=NAME[,alias=ALIAS]`` (one device, optionally under the name a Dockerfile uses)."""
    key, sep, rest = value.partition("=")
    if key not in ENTITLEMENTS or (sep and key != "device"):
        raise UsageError(f"{where}: unknown entitlement {value}",
                         hint=f"use one of {', '.join(ENTITLEMENTS)}")
    if sep:
        name, *options = rest.split(",")
        for option in options:
            k, has, _ = option.partition("=")
            if not has:
                raise UsageError(f'{where}: invalid device config "{option}"')
            if k != "alias":
                raise UsageError(f'{where}: unknown device config key "{k}"',
                                 hint="use device=NAME or device=NAME,alias=ALIAS")
        if not name:
            raise UsageError(f"{where}: {value}: no device name")
    return value


@dataclass
class CDIConfig:
    """Where the host describes its CDI devices (``RUN --device``), as buildkitd's [cdi]."""

    disabled: bool = False
    spec_dirs: list[Path] = field(default_factory=lambda: [
        Path("/etc/cdi"), Path("/var/run/cdi"), Path("/etc/buildkit/cdi")])
    # devices or kinds any build may use without the device entitlement
    auto_allowed: list[str] = field(default_factory=list)


@dataclass
class HttpConfig:
    """HTTP(S) sources (``ADD URL``): extra CA files trusted for their TLS."""

    ca: list[str] = field(default_factory=list)


# Long enough to keep a working session warm, short enough not to hold ~100 MB for hours.
DEFAULT_SERVER_IDLE_TIMEOUT = 15 * 60.0


@dataclass
class CommandServerConfig:
    """The warm command server (``bkpy server``): whether the first command starts it,
    and when an unused one exits."""

    auto_start: bool = True
    idle_timeout: float = DEFAULT_SERVER_IDLE_TIMEOUT


@dataclass
class HistoryConfig:
    """``[history]``: how many recorded builds to keep, how long, how much disk
    (``bkpy history``). BuildKit's defaults: 50 entries, 48 hours; 0 is no limit."""

    max_entries: int = 50
    max_age: float = 48 * 3600.0
    max_size: int = 0


@dataclass
class BuilderConfig:
    root: Path = field(default_factory=default_state_root)
    max_parallelism: int = field(default_factory=lambda: os.cpu_count() or 1)
    oci_runtime: str = DEFAULT_RUNTIME
    gc: GCPolicy = field(default_factory=GCPolicy)
    registries: dict[str, RegistryHost] = field(default_factory=dict)
    # Entitlements builds may be granted (buildkitd's --allow-insecure-entitlement).
    insecure_entitlements: list[str] = field(default_factory=list)
    cdi: CDIConfig = field(default_factory=lambda: CDIConfig())
    http: HttpConfig = field(default_factory=HttpConfig)
    command_server: CommandServerConfig = field(default_factory=CommandServerConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)


def _expect(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = data[key]
    if not isinstance(value, kind):
        raise UsageError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def load_config(path: Path | None = None) -> BuilderConfig:
    """Load the TOML config (``path``, else ``$BKPY_BUILDER_CONFIG``, else the default
    location); a missing default file gives the defaults."""
    if path is None and os.environ.get("BKPY_BUILDER_CONFIG"):
        path = Path(os.environ["BKPY_BUILDER_CONFIG"])
    explicit = path is not None
    path = path or DEFAULT_CONFIG_PATH
    cfg = BuilderConfig()
    if not path.exists():
        if explicit:
            raise UsageError(f"config file {path} does not exist")
        return cfg
    import tomllib  # reason: ~2 ms on every CLI start, needed only when a config file exists

    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: invalid TOML: {err}") from None
    where = str(path)
    known = {"root", "max-parallelism", "oci-runtime", "gc", "registry",
             "insecure-entitlements", "cdi", "http", "command-server", "history"}
    unknown = set(data) - known
    if unknown:
        raise UsageError(f"{where}: unknown keys {sorted(unknown)}",
                         hint=f"known keys: {', '.join(sorted(known))}")
    if "root" in data:
        cfg.root = Path(_expect(data, "root", str, where))
    if "max-parallelism" in data:
        cfg.max_parallelism = _expect(data, "max-parallelism", int, where)
        if cfg.max_parallelism < 1:
            raise UsageError(f"{where}: max-parallelism must be at least 1")
    if "oci-runtime" in data:
        cfg.oci_runtime = _expect(data, "oci-runtime", str, where)
    if "insecure-entitlements" in data:
        cfg.insecure_entitlements = [
            check_entitlement(str(e), f"{where}: insecure-entitlements")
            for e in _expect(data, "insecure-entitlements", list, where)]
    if "cdi" in data:
        cdi = _expect(data, "cdi", dict, where)
        # buildkitd.toml spells these specDirs and autoAllowed
        dirs = cdi.get("spec-dirs", cdi.get("specDirs"))
        if dirs is not None:
            cfg.cdi.spec_dirs = [Path(str(d)) for d in dirs]
        allowed = cdi.get("auto-allowed", cdi.get("autoAllowed"))
        if allowed is not None:
            cfg.cdi.auto_allowed = [str(a) for a in allowed]
        cfg.cdi.disabled = bool(cdi.get("disabled", False))
    if "http" in data:
        http = _expect(data, "http", dict, where)
        unknown_http = set(http) - {"ca"}
        if unknown_http:
            raise UsageError(f"{where}: unknown keys in [http]: {sorted(unknown_http)}",
                             hint="known keys: ca")
        ca = http.get("ca", [])
        if not isinstance(ca, list) or not all(isinstance(c, str) for c in ca):
            raise UsageError(f"{where}: [http] ca must be a list of file paths")
        cfg.http.ca = list(ca)
    if "command-server" in data:
        _load_command_server(_expect(data, "command-server", dict, where), cfg, where)
    if "history" in data:
        _load_history(_expect(data, "history", dict, where), cfg, f"{where}: [history]")
    if "gc" in data:
        gc = _expect(data, "gc", dict, where)
        if "keep-storage" in gc:
            cfg.gc.keep_storage = parse_size(gc["keep-storage"])
        if "keep-duration" in gc:
            cfg.gc.keep_duration = parse_duration(gc["keep-duration"])
    for host, opts in _expect(data, "registry", dict, where).items() if "registry" in data else ():
        if not isinstance(opts, dict):
            raise UsageError(f"{where}: [registry.{host!r}] must be a table")
        cfg.registries[host] = RegistryHost(
            http=bool(opts.get("http", False)),
            insecure=bool(opts.get("insecure", False)),
            ca=list(opts.get("ca", [])),
            mirrors=list(opts.get("mirrors", [])),
        )
    return cfg


def _load_history(table: dict[str, Any], cfg: BuilderConfig, where: str) -> None:
    # buildkitd.toml spells them maxEntries and maxAge (seconds)
    keys = {"max-entries": "maxEntries", "max-age": "maxAge", "max-size": "maxSize"}
    unknown = set(table) - set(keys) - set(keys.values())
    if unknown:
        raise UsageError(f"{where}: unknown keys {sorted(unknown)}",
                         hint="known keys: max-entries, max-age, max-size")

    def value(key: str) -> Any:
        return table.get(key, table.get(keys[key]))

    if value("max-entries") is not None:
        entries = value("max-entries")
        if not isinstance(entries, int) or entries < 0:
            raise UsageError(f"{where}: max-entries must be a whole number >= 0")
        cfg.history.max_entries = entries
    if value("max-age") is not None:
        cfg.history.max_age = parse_duration(value("max-age"))
    if value("max-size") is not None:
        cfg.history.max_size = parse_size(value("max-size"))


def _load_command_server(table: dict[str, Any], cfg: BuilderConfig, where: str) -> None:
    unknown = set(table) - {"auto-start", "idle-timeout"}
    if unknown:
        raise UsageError(f"{where}: unknown keys in [command-server]: {sorted(unknown)}",
                         hint="known keys: auto-start, idle-timeout")
    if "auto-start" in table:
        cfg.command_server.auto_start = _expect(table, "auto-start", bool,
                                                f"{where}: [command-server]")
    if "idle-timeout" in table:
        value = _expect(table, "idle-timeout", (str, int), f"{where}: [command-server]")
        cfg.command_server.idle_timeout = parse_idle_timeout(value)
