"""--cache-to / --cache-from end to end: build on state root A, export the cache (registry,
local, inline), build on an empty root B importing it: every step cached, nothing run, the
same image; lazily (a late change pulls only what it needs), and through bkpyd."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control.conftest import Daemon, client_env, import_busybox, run_bkpy
from tests.e2e.conftest import Bkpy, make_runner
from tests.images import write_busybox_layout
from tests.registry.fixtures import HTPASSWD_SECRET, PASSWORD, USER, RegistryServer

# builder stage: its layer must not reach B unless asked; /rand tells a re-run apart
DOCKERFILE = """\
FROM busybox AS builder
RUN echo built > /b.txt && cat /proc/sys/kernel/random/uuid > /rand-builder
RUN echo more > /more.txt

FROM busybox
COPY --from=builder /b.txt /b.txt
ARG LAST=1
RUN echo "last $LAST" > /last && cat /proc/sys/kernel/random/uuid > /rand
COPY app.txt /app.txt
"""
CACHE_CONFIG = "application/vnd.buildkit.cacheconfig.v0"


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    c.mkdir()
    (c / "Dockerfile").write_text(DOCKERFILE)
    (c / "app.txt").write_text("app\n")
    return c


@pytest.fixture
def roots(tmp_path: Path, busybox_layout: Path) -> tuple[Bkpy, Bkpy, Path]:
    """Two empty state roots with busybox imported (A builds, B imports)."""
    a = make_runner(tmp_path / "A")
    b = make_runner(tmp_path / "B")
    for run in (a, b):
        run("image", "import", str(busybox_layout), "busybox:latest")
    return a, b, tmp_path / "B"


def _digest(run: Bkpy, ctx: Path, out: Path, *args: str,
            env: dict[str, str] | None = None) -> tuple[str, str]:
    """Build to an OCI layout folder; (manifest digest, plain progress)."""
    r = run("build", "--progress", "plain", "-o", f"type=oci,dest={out},tar=false",
            *args, str(ctx), env=env)
    index = json.loads((out / "index.json").read_text())
    return index["manifests"][0]["digest"], r.err


def _ran(progress: str) -> list[str]:
    """Names of steps that ran (plain progress: a step's DONE line with no CACHED)."""
    names: dict[str, str] = {}
    state: dict[str, str] = {}
    for line in progress.splitlines():
        if not line.startswith("#"):
            continue
        num, _, rest = line[1:].partition(" ")
        if rest.startswith("["):
            names.setdefault(num, rest)
        if rest.startswith("CACHED"):
            state[num] = "cached"
        elif rest.startswith("DONE") and state.get(num) != "cached":
            state[num] = "ran"
    return [names.get(n, n) for n, s in state.items() if s == "ran"
            and ("RUN" in names.get(n, "") or "COPY" in names.get(n, ""))]


def _blobs(root: Path) -> set[str]:
    d = root / "content" / "content" / "blobs" / "sha256"
    return {"sha256:" + p.name for p in d.iterdir()} if d.is_dir() else set()


def _skopeo_raw(ref: str) -> dict:
    p = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_registry_cache_max_makes_b_fully_cached(roots: tuple[Bkpy, Bkpy, Path], ctx: Path,
                                                 tmp_path: Path, registry: RegistryServer
                                                 ) -> None:
    a, b, _ = roots
    ref = f"{registry.host}/cache/app:max"
    want, _ = _digest(a, ctx, tmp_path / "a", "--cache-to", f"type=registry,ref={ref},mode=max")
    manifest = _skopeo_raw(ref)
    assert manifest["config"]["mediaType"] == CACHE_CONFIG
    assert all("containerd.io/uncompressed" in layer["annotations"]
               for layer in manifest["layers"])
    got, progress = _digest(b, ctx, tmp_path / "b", "--cache-from", ref)
    assert _ran(progress) == [], progress
    assert got == want
    # the records are now local: a rebuild without --cache-from hits too
    again, progress = _digest(b, ctx, tmp_path / "b2")
    assert _ran(progress) == [] and again == want


def test_min_versus_max(roots: tuple[Bkpy, Bkpy, Path], ctx: Path, tmp_path: Path,
                        registry: RegistryServer) -> None:
    """min: only the final image's records, so the builder stage runs on B when asked
    for; max: it is cached too."""
    a, b, _ = roots
    for mode in ("min", "max"):
        a("build", "--cache-to", f"type=registry,ref={registry.host}/cache/mm:{mode},mode={mode}",
          str(ctx))
    b_min = b("build", "--progress", "plain", "--target", "builder", "--cache-from",
              f"{registry.host}/cache/mm:min", str(ctx))
    assert any("RUN echo built" in n for n in _ran(b_min.err)), b_min.err
    c = make_runner(tmp_path / "C")
    c("image", "import", str(write_busybox_layout(tmp_path / "bb")), "busybox:latest")
    c_max = c("build", "--progress", "plain", "--target", "builder", "--cache-from",
              f"{registry.host}/cache/mm:max", str(ctx))
    assert _ran(c_max.err) == [], c_max.err


def test_import_is_lazy(roots: tuple[Bkpy, Bkpy, Path], ctx: Path, tmp_path: Path,
                        registry: RegistryServer) -> None:
    """A change in the last RUN on B: only the final stage's chain up to that step is
    fetched, never the builder stage's layers."""
    a, b, b_root = roots
    ref = f"{registry.host}/cache/lazy:1"
    a("build", "--cache-to", f"type=registry,ref={ref},mode=max", str(ctx))
    before = _blobs(b_root)
    run = b("build", "--progress", "plain", "--build-arg", "LAST=2", "--cache-from", ref,
            str(ctx))
    ran = _ran(run.err)
    assert len(ran) == 2 and any("RUN echo \"last" in n for n in ran), run.err  # RUN + COPY
    fetched = _blobs(b_root) - before
    layers = {d["digest"] for d in _skopeo_raw(ref)["layers"]}
    pulled = fetched & layers
    assert len(pulled) == 1, (pulled, run.err)  # the COPY --from layer, nothing of builder


def test_fully_cached_build_without_output_pulls_nothing(
        roots: tuple[Bkpy, Bkpy, Path], ctx: Path, registry: RegistryServer) -> None:
    """Every step is in the import and nothing reads the result (no output): as BuildKit,
    B downloads no layer at all; with an output it fetches the final chain only."""
    a, b, b_root = roots
    ref = f"{registry.host}/cache/nothing:1"
    a("build", "--cache-to", f"type=registry,ref={ref},mode=max", str(ctx))
    layers = {d["digest"] for d in _skopeo_raw(ref)["layers"]}
    before = _blobs(b_root)
    run = b("build", "--progress", "plain", "--cache-from", ref, str(ctx))
    assert _ran(run.err) == [], run.err
    assert not (_blobs(b_root) - before) & layers, run.err
    run = b("build", "--progress", "plain", "--cache-from", ref, "--output",
            f"type=oci,dest={b_root.parent / 'out.tar'}", str(ctx))
    assert _ran(run.err) == [], run.err
    assert (_blobs(b_root) - before) & layers, run.err


def test_local_cache(roots: tuple[Bkpy, Bkpy, Path], ctx: Path, tmp_path: Path) -> None:
    a, b, _ = roots
    dest = tmp_path / "cache"
    want, _ = _digest(a, ctx, tmp_path / "a", "--cache-to",
                      f"type=local,dest={dest},mode=max")
    index = json.loads((dest / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    got, progress = _digest(b, ctx, tmp_path / "b", "--cache-from", f"type=local,src={dest}")
    assert _ran(progress) == [], progress
    assert got == want


def test_local_cache_missing_is_a_warning(bkpy: Bkpy, ctx: Path, tmp_path: Path) -> None:
    run = bkpy("build", "--cache-from", f"type=local,src={tmp_path / 'nothing'}", str(ctx))
    assert "not found" in run.err


def test_inline_cache(roots: tuple[Bkpy, Bkpy, Path], ctx: Path, tmp_path: Path,
                      registry: RegistryServer) -> None:
    a, b, _ = roots
    ref = f"{registry.host}/cache/inline:1"
    a("build", "-t", ref, "--push", "--cache-to", "type=inline", str(ctx))
    want = _skopeo_raw(ref)
    config = json.loads(subprocess.run(
        ["skopeo", "inspect", "--config", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True, text=True, check=True).stdout)
    assert "moby.buildkit.cache.v0" in config
    b_ref = f"{registry.host}/cache/inline:2"
    run = b("build", "--progress", "plain", "-t", b_ref, "--push", "--cache-from", ref,
            str(ctx))
    assert _ran(run.err) == [], run.err
    assert _skopeo_raw(b_ref)["layers"] == want["layers"]


def test_build_arg_inline_cache(bkpy: Bkpy, ctx: Path, registry: RegistryServer) -> None:
    ref = f"{registry.host}/cache/inline-arg:1"
    bkpy("build", "-t", ref, "--push", "--build-arg", "BUILDKIT_INLINE_CACHE=1", str(ctx))
    config = json.loads(subprocess.run(
        ["skopeo", "inspect", "--config", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True, text=True, check=True).stdout)
    assert "moby.buildkit.cache.v0" in config


def test_image_manifest_false_writes_an_index(bkpy: Bkpy, ctx: Path,
                                              registry: RegistryServer) -> None:
    ref = f"{registry.host}/cache/legacy:1"
    bkpy("build", "--cache-to", f"type=registry,ref={ref},image-manifest=false", str(ctx))
    index = _skopeo_raw(ref)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert any(m["mediaType"] == CACHE_CONFIG for m in index["manifests"])
    inspect = bkpy("imagetools", "inspect", "--raw", ref)
    assert CACHE_CONFIG in inspect.out


def test_bad_specs_are_usage_errors(bkpy: Bkpy, ctx: Path) -> None:
    for spec, words in ((("--cache-to", "type=registry,ref=x/y,colour=red"), "'colour'"),
                        (("--cache-to", "type=s3,ref=x"), "unknown cache type"),
                        (("--cache-to", "type=registry"), "needs ref="),
                        (("--cache-to", "type=local"), "needs dest="),
                        (("--cache-from", "type=local,dest=x"), "'dest'")):
        run = bkpy("build", *spec, str(ctx), check=False)
        assert run.code == 2 and words in run.err, run.err


def test_unreachable_ref(bkpy: Bkpy, ctx: Path) -> None:
    ref = "127.0.0.1:1/cache/nowhere:1"
    failed = bkpy("build", "--cache-to", f"type=registry,ref={ref}", str(ctx), check=False)
    assert failed.code == 1, failed.err
    ok = bkpy("build", "--cache-to", f"type=registry,ref={ref},ignore-error=true", str(ctx))
    assert "failed to export cache" in ok.err
    imported = bkpy("build", "--cache-from", ref, str(ctx))
    assert "failed to import cache" in imported.err


def test_foreign_and_corrupt_caches_are_warnings(bkpy: Bkpy, ctx: Path, tmp_path: Path) -> None:
    """A cache config without bkpy's key version (BuildKit's) or one that is not JSON."""
    for name, body in (("foreign", b'{"layers":[],"records":[{"digest":"sha256:' + b"a" * 64
                                    + b'"}]}'), ("corrupt", b"{not json")):
        src = tmp_path / name
        _write_layout(src, body)
        run = bkpy("build", "--cache-from", f"type=local,src={src}", str(ctx))
        assert ("another builder" if name == "foreign" else "failed to import") in run.err, \
            run.err


def _write_layout(dest: Path, config: bytes) -> None:
    import hashlib

    def put(data: bytes) -> tuple[str, int]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        p = dest / "blobs" / "sha256" / digest.split(":")[1]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return digest, len(data)

    cd, cs = put(config)
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": CACHE_CONFIG, "digest": cd, "size": cs},
                           "layers": []}).encode()
    md, ms = put(manifest)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))


def test_through_bkpyd(tmp_path: Path, ctx: Path, registry: RegistryServer) -> None:
    """Export from one daemon's root, import on another's: all cached, same image."""
    layout = write_busybox_layout(tmp_path / "busybox")
    digests = []
    for name, args in (("one", ("--cache-to", f"type=registry,ref={registry.host}/cache/d:1,"
                                "mode=max")),
                       ("two", ("--cache-from", f"{registry.host}/cache/d:1"))):
        import_busybox(tmp_path / name, layout)
        sock = tmp_path / f"{name}.sock"
        daemon = Daemon(tmp_path / name, f"unix://{sock}", ["--addr", f"unix://{sock}"],
                        tmp_path / f"{name}.log").start()
        try:
            (tmp_path / f"{name}-client").mkdir()
            env = client_env(tmp_path / f"{name}-client", daemon)
            out = tmp_path / f"{name}-img"
            r = run_bkpy("build", "--progress", "plain", "-o", f"type=oci,dest={out},tar=false",
                         *args, str(ctx), env=env)
            if name == "two":
                assert _ran(r.err) == [], r.err
            digests.append(json.loads((out / "index.json").read_text())["manifests"][0]["digest"])
        finally:
            daemon.stop()
    assert digests[0] == digests[1]


def _inodes(layout: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in (layout / "blobs" / "sha256").iterdir()}


def test_local_cache_through_bkpyd(tmp_path: Path, ctx: Path) -> None:
    """type=local through bkpyd: the directory is the client's. Export: the daemon sends
    the blobs the client's dest lacks, the client merges index.json (other tags stay);
    import: the daemon reads the client's layout through the session. Another daemon's
    empty root then runs nothing and makes the same image."""
    layout = write_busybox_layout(tmp_path / "busybox")
    dest = tmp_path / "client-cache"  # on the client: no daemon sees this path
    digests = []
    for name in ("one", "two"):
        import_busybox(tmp_path / name, layout)
        sock = tmp_path / f"{name}.sock"
        daemon = Daemon(tmp_path / name, f"unix://{sock}", ["--addr", f"unix://{sock}"],
                        tmp_path / f"{name}.log").start()
        try:
            (tmp_path / f"{name}-client").mkdir()
            env = client_env(tmp_path / f"{name}-client", daemon)
            out = tmp_path / f"{name}-img"
            args = ("--cache-to", f"type=local,dest={dest},mode=max") if name == "one" \
                else ("--cache-from", f"type=local,src={dest}")
            r = run_bkpy("build", "--progress", "plain", "-o", f"type=oci,dest={out},tar=false",
                         *args, str(ctx), env=env)
            digests.append(json.loads((out / "index.json").read_text())["manifests"][0]["digest"])
            if name == "one":
                index = json.loads((dest / "index.json").read_text())
                tags = [m["annotations"]["org.opencontainers.image.ref.name"]
                        for m in index["manifests"]]
                assert tags == ["latest"] and (dest / "oci-layout").is_file()
                # a second tag: the first stays, and blobs the client has are not re-sent
                before = _inodes(dest)
                run_bkpy("build", "--cache-to", f"type=local,dest={dest},mode=max,tag=other",
                         str(ctx), env=env)
                index = json.loads((dest / "index.json").read_text())
                assert sorted(m["annotations"]["org.opencontainers.image.ref.name"]
                              for m in index["manifests"]) == ["latest", "other"]
                after = _inodes(dest)
                assert {k: after[k] for k in before} == before
            else:
                assert _ran(r.err) == [], r.err
                missing = run_bkpy("build", "--cache-from",
                                   f"type=local,src={tmp_path / 'nothing'}", str(ctx), env=env)
                assert "not found: no such directory" in missing.err
                no_tag = run_bkpy("build", "--cache-from", f"type=local,src={dest},tag=nope",
                                  str(ctx), env=env)
                assert "not found: no such tag 'nope'" in no_tag.err
        finally:
            daemon.stop()
    assert digests[0] == digests[1]


def test_multi_platform_cache(roots: tuple[Bkpy, Bkpy, Path], ctx: Path, tmp_path: Path,
                              registry: RegistryServer) -> None:
    """One cache holds both platforms' steps: an empty root B runs nothing for either and
    makes the same index."""
    a, b, _ = roots
    ref = f"{registry.host}/cache/multi:1"
    plats = ("--platform", "linux/amd64,linux/arm64")
    want, progress = _digest(a, ctx, tmp_path / "a", *plats, "--cache-to",
                             f"type=registry,ref={ref},mode=max")
    assert "linux/arm64" in progress
    got, progress = _digest(b, ctx, tmp_path / "b", *plats, "--cache-from", ref)
    assert _ran(progress) == [], progress
    assert "CACHED" in progress and "linux/arm64" in progress
    assert got == want
    index = json.loads((tmp_path / "b" / "index.json").read_text())
    assert index["manifests"][0]["mediaType"] == "application/vnd.oci.image.index.v1+json"


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    root = tmp_path / "auth-registry"
    root.mkdir()
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{USER}:{HTPASSWD_SECRET}\n")
    server = RegistryServer(root, auth={"htpasswd": {"realm": "test", "path": str(htpasswd)}})
    yield server
    server.stop()


def test_cache_with_credentials(roots: tuple[Bkpy, Bkpy, Path], ctx: Path, tmp_path: Path,
                                auth_registry: RegistryServer) -> None:
    """A registry that needs a login: the cache goes with the credentials a push uses
    (docker's config.json); without them the error names the registry and says to log
    in, and ignore-error=true makes it a warning."""
    a, b, _ = roots
    host = auth_registry.host
    logged_in = tmp_path / "docker"
    logged_in.mkdir()
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (logged_in / "config.json").write_text(json.dumps({"auths": {host: {"auth": token}}}))
    anonymous = tmp_path / "anonymous"
    anonymous.mkdir()
    creds = {"DOCKER_CONFIG": str(logged_in)}
    ref = f"{host}/cache/private:1"

    want, _ = _digest(a, ctx, tmp_path / "a", "--cache-to",
                      f"type=registry,ref={ref},mode=max", env=creds)
    a("build", "-t", f"{host}/app/private:1", "--push", str(ctx), env=creds)
    got, progress = _digest(b, ctx, tmp_path / "b", "--cache-from", ref, env=creds)
    assert _ran(progress) == [], progress
    assert got == want

    none = {"DOCKER_CONFIG": str(anonymous)}
    failed = a("build", "--cache-to", f"type=registry,ref={host}/cache/other:1", str(ctx),
               env=none, check=False)
    assert failed.code != 0
    assert host in failed.err and f"docker login {host}" in failed.err, failed.err
    warned = a("build", "--cache-to",
               f"type=registry,ref={host}/cache/other:1,ignore-error=true", str(ctx), env=none)
    assert "failed to export cache" in warned.err and f"docker login {host}" in warned.err
    imported = b("build", "--cache-from", ref, str(ctx), env=none)
    assert "failed to import cache" in imported.err and f"docker login {host}" in imported.err


def test_cold_build_timing(roots: tuple[Bkpy, Bkpy, Path], ctx: Path, tmp_path: Path,
                           registry: RegistryServer) -> None:
    """Not an assertion on speed: prints the figures for the report."""
    a, b, b_root = roots
    ref = f"{registry.host}/cache/time:1"
    a("build", "--cache-to", f"type=registry,ref={ref},mode=max", str(ctx))
    c = make_runner(tmp_path / "C")
    c("image", "import", str(write_busybox_layout(tmp_path / "bb")), "busybox:latest")
    t0 = time.monotonic()
    c("build", str(ctx))
    cold = time.monotonic() - t0
    before = _blobs(b_root)
    t0 = time.monotonic()
    b("build", "--cache-from", ref, str(ctx))
    warm = time.monotonic() - t0
    print(f"\ncold build without cache: {cold:.2f}s; with --cache-from: {warm:.2f}s, "
          f"{len(_blobs(b_root) - before)} blobs fetched")


MOUNT_DOCKERFILE = """\
FROM busybox
ARG ROUND=1
RUN --mount=type=cache,target=/cache,id=pkgs \\
    (cp /cache/pkg.txt /from-cache.txt 2>/dev/null || true) && \\
    ([ -f /cache/pkg.txt ] || cat /proc/sys/kernel/random/uuid > /cache/pkg.txt) && \\
    echo "round $ROUND" >> /cache/log.txt && cp /cache/pkg.txt /now.txt
"""


@pytest.mark.parametrize("kind", ["registry", "local"])
def test_cache_mounts_travel(roots: tuple[Bkpy, Bkpy, Path], tmp_path: Path,
                             registry: RegistryServer, kind: str) -> None:
    """With cache-mounts=true a RUN --mount=type=cache directory reaches B: a step that
    runs on B sees what A's run left in the cache; without it B starts empty."""
    a, b, _ = roots
    c = tmp_path / "mctx"
    c.mkdir()
    (c / "Dockerfile").write_text(MOUNT_DOCKERFILE)
    if kind == "registry":
        to = f"type=registry,ref={registry.host}/cache/mounts:1"
        frm = f"type=registry,ref={registry.host}/cache/mounts:1"
    else:
        to = f"type=local,dest={tmp_path / 'lc'}"
        frm = f"type=local,src={tmp_path / 'lc'}"
    out_a = tmp_path / "out-a"
    a("build", "--cache-to", f"{to},mode=max,cache-mounts=true", "-o",
      f"type=local,dest={out_a}", str(c))
    assert not (out_a / "from-cache.txt").exists()
    made = (out_a / "now.txt").read_text()
    out_b = tmp_path / "out-b"
    r = b("build", "--progress", "plain", "--cache-from", frm, "--build-arg", "ROUND=2",
          "-o", f"type=local,dest={out_b}", str(c))
    assert "importing cache mount pkgs" in r.err, r.err
    assert (out_b / "from-cache.txt").read_text() == made
    assert (out_b / "now.txt").read_text() == made
    # B's own cache now exists: a later import never overwrites it
    r = b("build", "--progress", "plain", "--cache-from", frm, "--build-arg", "ROUND=3",
          str(c))
    assert "importing cache mount" not in r.err, r.err


def test_cache_mounts_stay_home_by_default(roots: tuple[Bkpy, Bkpy, Path], tmp_path: Path
                                           ) -> None:
    a, b, _ = roots
    c = tmp_path / "mctx"
    c.mkdir()
    (c / "Dockerfile").write_text(MOUNT_DOCKERFILE)
    a("build", "--cache-to", f"type=local,dest={tmp_path / 'lc'},mode=max", str(c))
    out_b = tmp_path / "out-b"
    r = b("build", "--progress", "plain", "--cache-from", f"type=local,src={tmp_path / 'lc'}",
          "--build-arg", "ROUND=2", "-o", f"type=local,dest={out_b}", str(c))
    assert "importing cache mount" not in r.err, r.err
    assert not (out_b / "from-cache.txt").exists()
    bad = b("build", "--cache-to", "type=inline,cache-mounts=true", str(c), check=False)
    assert bad.code == 2 and "cache-mounts" in bad.err, bad.err
