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
    [[registry."localhost:5000".keypair]]   # a client certificate for this registry
    cert = "/etc/ssl/client.pem"
    key = "/etc/ssl/client-key.pem"

A buildkitd.toml is read as buildkitd reads it (:func:`_load_buildkitd`): ``[worker.oci]``
(its GC settings and ``[[worker.oci.gcpolicy]]`` rules, ``max-parallelism``, ``binary``),
``[grpc]`` (addresses and TLS for bkpyd), ``debug``, ``[history]``, ``[cdi]`` and
``[registry]``; what does not apply to bkpy is listed in ``BuilderConfig.ignored``, which
bkpyd logs at start, one line per key. Unknown keys are ignored the same way (buildkitd's
decoder ignores them silently), but inside bkpy's own tables they are errors.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_py.errors import UsageError
from buildkit_py.units import DiskSpace, parse_disk_space, parse_prune_filters, ram_in_bytes

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


def parse_size(value: str | int) -> int:
    """``10GB``, ``512MiB``, ``1000`` -> bytes; binary units, as BuildKit and buildx read
    every size (go-units ``RAMInBytes``: ``10GB`` is 10 GiB)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return ram_in_bytes(str(value).strip())
    except ValueError:
        raise UsageError(f"invalid size {value!r}",
                         hint="use e.g. 512MB, 10GB or 2GiB (binary units: 1GB = 1024MB)") from None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int) -> float:
    """Go-style duration (``168h``, ``1h30m``) -> seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # buildkitd.toml: a number of seconds
    if not isinstance(value, str):
        raise UsageError(f"invalid duration {value!r}", hint="use e.g. 48h or 1h30m")
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        return float(text)  # "3600": seconds, as buildkitd.toml reads it
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
    # client certificates (cert, key) presented to the registry
    keypairs: list[tuple[str, str]] = field(default_factory=list)


def parse_idle_timeout(value: str | int) -> float:
    """A duration, or ``0`` for never."""
    if isinstance(value, int) or value.strip() == "0":
        return float(value)
    return parse_duration(value)


@dataclass(frozen=True)
class GCRule:
    """One ``[[worker.oci.gcpolicy]]`` of buildkitd.toml (BuildKit's prune policy):
    results not in use, last used longer than ``keep_duration`` ago (0: any) and matching
    one of ``filters`` (containerd syntax, e.g. ``type==source.local``; none: all) are
    deleted, least valuable first, until the cache fits the limit the three sizes give
    (none: all of them go). ``all``: internal records too."""

    all: bool = False
    filters: tuple[str, ...] = ()
    keep_duration: float = 0.0
    reserved_space: DiskSpace = field(default_factory=DiskSpace)
    max_used_space: DiskSpace = field(default_factory=DiskSpace)
    min_free_space: DiskSpace = field(default_factory=DiskSpace)


@dataclass
class GCPolicy:
    """When the daemon collects garbage. bkpy's own ``[gc]`` (``keep_storage``,
    ``keep_duration``), or buildkitd's: with a ``[worker.oci]`` table, ``rules`` in order
    (its ``gcpolicy`` list, else BuildKit's four default rules made from the worker's
    ``reservedSpace``/``maxUsedSpace``/``minFreeSpace`` and the disk's size)."""

    keep_storage: int | None = None
    keep_duration: float | None = None
    buildkitd: bool = False  # a [worker.oci] table: BuildKit's GC applies
    enabled: bool = True  # [worker.oci] gc = false: no automatic GC
    rules: list[GCRule] = field(default_factory=list)
    reserved_space: DiskSpace = field(default_factory=DiskSpace)
    max_used_space: DiskSpace = field(default_factory=DiskSpace)
    min_free_space: DiskSpace = field(default_factory=DiskSpace)


@dataclass
class GRPCConfig:
    """buildkitd.toml's ``[grpc]``: what bkpyd listens on when no ``--addr`` is given, its
    TLS files when no ``--tls*`` flag is, and the owner of its unix sockets."""

    addresses: list[str] = field(default_factory=list)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    uid: int | None = None
    gid: int | None = None


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
    grpc: GRPCConfig = field(default_factory=GRPCConfig)
    debug: bool = False  # buildkitd.toml's debug/trace, [log] level
    # [worker.oci] platforms: listed first, the first is the default build and target
    # platform (builder/worker_info.py); labels: added to the worker's own
    worker_platforms: list[str] = field(default_factory=list)
    worker_labels: dict[str, str] = field(default_factory=dict)
    # buildkitd.toml settings that do not apply to bkpy, one line each (bkpyd logs them)
    ignored: list[str] = field(default_factory=list)


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
    _load_buildkitd(data, cfg, where)
    for key in sorted(set(data) - known - BUILDKITD_KEYS):
        cfg.ignored.append(f"{key}: unknown key, ignored (neither a bkpy nor a buildkitd "
                           "setting)")
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
        cfg.registries[host] = _registry_host(opts, f'{where}: [registry."{host}"]', cfg)
    return cfg


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where} must be a list of strings")
    return list(value)


def _registry_host(opts: Any, where: str, cfg: BuilderConfig) -> RegistryHost:
    """``[registry."host"]`` as buildkitd reads it: http, insecure, ca, mirrors,
    ``[[keypair]]`` (cert, key) and ``tlsconfigdir`` (docker's certs.d layout:
    ``*.crt`` CAs, ``NAME.cert`` with ``NAME.key`` client certificates)."""
    if not isinstance(opts, dict):
        raise UsageError(f"{where} must be a table")
    known = {"http", "insecure", "ca", "mirrors", "keypair", "tlsconfigdir"}
    for key in sorted(set(opts) - known):
        cfg.ignored.append(f"{where.partition(': ')[2]} {key}: unknown key, ignored")
    host = RegistryHost(
        http=_expect(opts, "http", bool, where) if "http" in opts else False,
        insecure=_expect(opts, "insecure", bool, where) if "insecure" in opts else False,
        ca=_strings(opts.get("ca", []), f"{where} ca"),
        mirrors=_strings(opts.get("mirrors", []), f"{where} mirrors"),
    )
    pairs = opts.get("keypair", [])
    if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
        raise UsageError(f"{where} keypair must be [[...keypair]] tables with cert and key")
    for pair in pairs:
        cert, key = pair.get("cert"), pair.get("key")
        if not isinstance(cert, str) or not isinstance(key, str):
            raise UsageError(f"{where} keypair: give both cert and key (file paths)")
        host.keypairs.append((cert, key))
    for d in _strings(opts.get("tlsconfigdir", []), f"{where} tlsconfigdir"):
        try:
            names = sorted(os.listdir(d))
        except OSError as err:
            raise UsageError(f"{where} tlsconfigdir {d}: {err.strerror}") from None
        for name in names:
            if name.endswith(".crt"):
                host.ca.append(os.path.join(d, name))
            elif name.endswith(".cert"):
                host.keypairs.append((os.path.join(d, name),
                                      os.path.join(d, name.removesuffix(".cert") + ".key")))
    return host


# buildkitd.toml's top-level keys (cmd/buildkitd/config): read here or reported as ignored.
BUILDKITD_KEYS = frozenset({
    "debug", "trace", "log", "grpc", "worker", "proxyNetwork", "otel", "dns", "frontend",
    "system", "provenanceEnvDir", "cache"})
_BUILDKITD_IGNORED = {
    "proxyNetwork": "bkpy enforces no proxy network",
    "otel": "bkpy exports no OpenTelemetry traces",
    "dns": "RUN steps use the host's /etc/resolv.conf",
    "frontend": "bkpy runs only its built-in Dockerfile frontend",
    "system": "not used by bkpy",
    "provenanceEnvDir": "bkpy writes no provenance attestations",
    "cache": "bkpy has no GitHub Actions cache backend",
}
# [worker.oci] keys that mean nothing to bkpy's worker, and why.
_OCI_IGNORED = {
    "rootless": "bkpy runs as the user that starts it",
    "noProcessSandbox": "every RUN gets its own PID namespace",
    "networkMode": "RUN steps get loopback only, or the host's network",
    "cniConfigPath": "bkpy uses no CNI",
    "cniBinaryPath": "bkpy uses no CNI",
    "cniPoolSize": "bkpy uses no CNI",
    "bridgeName": "bkpy sets up no bridge",
    "bridgeSubnet": "bkpy sets up no bridge",
    "userRemapUnsupported": "not supported",
    "proxySnapshotterPath": "bkpy has only its overlayfs snapshotter",
    "defaultCgroupParent": "not supported",
    "stargzSnapshotter": "bkpy has only its overlayfs snapshotter",
    "apparmor-profile": "bkpy applies no AppArmor profile",
    "selinux": "bkpy applies no SELinux labels",
}
_GC_KEYS = ("gc", "gckeepstorage", "reservedSpace", "maxUsedSpace", "minFreeSpace",
            "gcpolicy")


def _load_buildkitd(data: dict[str, Any], cfg: BuilderConfig, where: str) -> None:
    """The parts of a buildkitd.toml that are not bkpy's own keys."""
    if data.get("debug") is True or data.get("trace") is True:
        cfg.debug = True
    if "log" in data:
        log = _expect(data, "log", dict, where)
        if str(log.get("level", "")).lower() in ("debug", "trace"):
            cfg.debug = True
        if log.get("format", "text") != "text":
            cfg.ignored.append("log.format: bkpyd logs text only")
    if "grpc" in data:
        _load_grpc(_expect(data, "grpc", dict, where), cfg, f"{where}: [grpc]")
    for key, why in _BUILDKITD_IGNORED.items():
        if data.get(key) not in (None, False, "", 0, [], {}):
            cfg.ignored.append(f"{key}: ignored ({why})")
    if "worker" not in data:
        return
    workers = _expect(data, "worker", dict, where)
    for key in sorted(set(workers) - {"oci", "containerd"}):
        cfg.ignored.append(f"worker.{key}: unknown worker, ignored")
    containerd = workers.get("containerd")
    if isinstance(containerd, dict) and containerd.get("enabled") is not False:
        cfg.ignored.append("worker.containerd: ignored (bkpy has no containerd worker; "
                           "its OCI worker builds)")
    if "oci" in workers:
        _load_oci_worker(_expect(workers, "oci", dict, where), cfg, f"{where}: [worker.oci]")


def _load_grpc(table: dict[str, Any], cfg: BuilderConfig, where: str) -> None:
    if "address" in table:
        cfg.grpc.addresses = _strings(table["address"], f"{where} address")
    for key in ("uid", "gid"):
        if key in table:
            setattr(cfg.grpc, key, _expect(table, key, int, where))
    tls = table.get("tls", {})
    if not isinstance(tls, dict):
        raise UsageError(f"{where} tls must be a table")
    for key in sorted(set(tls) - {"cert", "key", "ca"}):
        cfg.ignored.append(f"grpc.tls.{key}: unknown key, ignored")
    cfg.grpc.tls_cert = tls.get("cert") or None
    cfg.grpc.tls_key = tls.get("key") or None
    cfg.grpc.tls_ca = tls.get("ca") or None
    for key in ("debugAddress", "securityDescriptor"):
        if table.get(key):
            cfg.ignored.append(f"grpc.{key}: ignored (bkpyd serves no debug listener)"
                               if key == "debugAddress" else
                               f"grpc.{key}: ignored (Windows only)")
    for key in sorted(set(table) - {"address", "uid", "gid", "tls", "debugAddress",
                                    "securityDescriptor"}):
        cfg.ignored.append(f"grpc.{key}: unknown key, ignored")


def _load_oci_worker(oci: dict[str, Any], cfg: BuilderConfig, where: str) -> None:
    if oci.get("enabled") is False:
        cfg.ignored.append("worker.oci.enabled = false: ignored (the OCI worker is bkpy's "
                           "only worker; it stays enabled)")
    if "max-parallelism" in oci:
        value = _expect(oci, "max-parallelism", int, where)
        if value > 0:  # 0 is buildkitd's "no limit": keep bkpy's default (one per CPU)
            cfg.max_parallelism = value
    if oci.get("binary"):
        # a runc-compatible runtime: bkpy runs it in place of its own bkpy-runc
        binary = _expect(oci, "binary", str, where)
        if binary == "buildkit-runc" and not shutil.which(binary):
            binary = "runc"  # buildkitd's own fallback
        cfg.oci_runtime = binary
    snapshotter = oci.get("snapshotter", "auto")
    if snapshotter not in ("auto", "overlayfs", "overlay", ""):
        cfg.ignored.append(f"worker.oci.snapshotter = {snapshotter!r}: ignored (bkpy has "
                           "only its overlayfs snapshotter)")
    if "platforms" in oci:  # parsed where platforms are known: worker_info.worker_platforms
        cfg.worker_platforms = _strings(oci["platforms"], f"{where} platforms")
    if "labels" in oci:
        labels = _expect(oci, "labels", dict, where)
        cfg.worker_labels = {str(k): str(v) for k, v in labels.items()}
    for key, why in _OCI_IGNORED.items():
        # false, "" and 0 ask for nothing: only settings bkpy does not honour are listed
        if oci.get(key) not in (None, False, "", 0, [], {}):
            cfg.ignored.append(f"worker.oci.{key}: ignored ({why})")
    known = {"enabled", "max-parallelism", "binary", "snapshotter", "platforms", "labels",
             *_OCI_IGNORED, *_GC_KEYS}
    for key in sorted(set(oci) - known):
        cfg.ignored.append(f"worker.oci.{key}: unknown key, ignored")
    gc = cfg.gc
    gc.buildkitd = True
    if "gc" in oci:
        gc.enabled = _expect(oci, "gc", bool, where)

    def space(table: dict[str, Any], key: str, at: str) -> DiskSpace:
        if key not in table:
            return DiskSpace()
        try:
            return parse_disk_space(table[key])
        except ValueError as err:
            raise UsageError(f"{at}: {key}: {err}",
                             hint='use bytes (e.g. "10GB", binary units) or a percentage '
                                  'of the disk ("10%")') from None

    gc.reserved_space = space(oci, "reservedSpace", where) or space(oci, "gckeepstorage", where)
    gc.max_used_space = space(oci, "maxUsedSpace", where)
    gc.min_free_space = space(oci, "minFreeSpace", where)
    policies = oci.get("gcpolicy", [])
    if not isinstance(policies, list) or not all(isinstance(p, dict) for p in policies):
        raise UsageError(f"{where}: gcpolicy must be [[worker.oci.gcpolicy]] tables")
    for i, policy in enumerate(policies, 1):
        at = f"{where}: gcpolicy #{i}"
        unknown = set(policy) - {"all", "filters", "keepDuration", "keepBytes",
                                 "reservedSpace", "maxUsedSpace", "minFreeSpace"}
        for key in sorted(unknown):
            cfg.ignored.append(f"worker.oci.gcpolicy #{i} {key}: unknown key, ignored")
        filters = tuple(_strings(policy.get("filters", []), f"{at} filters"))
        try:
            parse_prune_filters(filters)
        except ValueError as err:
            raise UsageError(f"{at}: {err}",
                             hint='filters look like "type==source.local" or '
                                  '"description~=^RUN"') from None
        gc.rules.append(GCRule(
            all=_expect(policy, "all", bool, at) if "all" in policy else False,
            filters=filters,
            keep_duration=parse_duration(policy["keepDuration"])
            if "keepDuration" in policy else 0.0,
            # keepBytes is the deprecated name of reservedSpace
            reserved_space=space(policy, "reservedSpace", at) or space(policy, "keepBytes", at),
            max_used_space=space(policy, "maxUsedSpace", at),
            min_free_space=space(policy, "minFreeSpace", at)))


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
