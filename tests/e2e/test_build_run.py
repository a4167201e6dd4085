"""Issue 4 behaviour through ``bkpy build``: RUN in real containers, mounts, secrets, layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from tests.e2e.conftest import Bkpy


def _ctx(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ctx


def _oci_layers(tar_path: Path) -> tuple[dict, list[tarfile.TarFile]]:
    """(config, layer tars) of a single-platform OCI archive."""
    outer = tarfile.open(tar_path)

    def blob(digest: str) -> bytes:
        f = outer.extractfile("blobs/sha256/" + digest.split(":")[1])
        assert f is not None
        return f.read()

    index = json.loads(outer.extractfile("index.json").read())  # type: ignore[union-attr]
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    layers = []
    for layer in manifest["layers"]:
        data = blob(layer["digest"])
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        layers.append(tarfile.open(fileobj=io.BytesIO(data)))
    return config, layers


def test_run_output_mounts_and_secrets(bkpy: Bkpy, tmp_path: Path) -> None:
    # the Dockerfile checks the secret by hash, so the secret's bytes appear nowhere but in it
    md5 = hashlib.md5(b"s3cr3t").hexdigest()
    ctx = _ctx(tmp_path, f"""\
FROM busybox
RUN --mount=type=cache,target=/cache echo run >> /cache/log && cp /cache/log /cachelog
RUN --mount=type=tmpfs,target=/t touch /t/x && test -e /t/x
RUN --mount=type=secret,id=tok test "$(md5sum < /run/secrets/tok | cut -c1-32)" = {md5} \\
    && echo ok > /secret-ok
RUN --mount=type=secret,id=tok,env=TOK test "$(printf %s "$TOK" | md5sum | cut -c1-32)" = {md5}
RUN --mount=type=bind,source=data,target=/data cat /data/f > /fromdata
RUN --mount=type=bind,source=data,target=/data,rw touch /data/new && test -e /data/new
RUN --network=none ls /sys/class/net > /nets
""", {"data/f": "bound\n"})
    secret = tmp_path / "tok.txt"
    secret.write_text("s3cr3t")
    out = tmp_path / "img.tar"
    bkpy("build", "--secret", f"id=tok,src={secret}", "-o", f"type=oci,dest={out}", str(ctx))
    raw = out.read_bytes()
    config, layers = _oci_layers(out)
    files = {}
    for layer in layers:
        for m in layer.getmembers():
            if m.isfile():
                f = layer.extractfile(m)
                assert f is not None
                files[m.name] = f.read()
            assert b"s3cr3t" not in (layer.extractfile(m).read() if m.isfile() else b"")
    assert files["cachelog"] == b"run\n"
    assert files["secret-ok"] == b"ok\n"
    assert files["fromdata"] == b"bound\n"
    assert files["nets"] == b"lo\n"
    assert "data/new" not in files and "t/x" not in files
    assert b"s3cr3t" not in raw
    assert all("s3cr3t" not in json.dumps(h) for h in config["history"])


def test_missing_required_secret_fails(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM busybox\n"
               "RUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n")
    r = bkpy("build", str(ctx), check=False)
    assert r.code == 1
    assert "nope" in r.err
    assert "Traceback" not in r.err


def test_layers_carry_whiteouts_and_links(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, """\
FROM busybox
RUN mkdir -p /d && echo a > /d/a && ln /d/a /d/hard && ln -s a /d/soft && echo gone > /gone
RUN rm /gone /bin/ls && echo b > /d/a
""")
    out = tmp_path / "img.tar"
    bkpy("build", "-o", f"type=oci,dest={out}", str(ctx))
    config, layers = _oci_layers(out)
    assert len(config["rootfs"]["diff_ids"]) == len(layers) == 3
    second = {m.name: m for m in layers[1].getmembers()}
    assert second["d/hard"].islnk() or second["d/a"].islnk()
    assert second["d/soft"].issym() and second["d/soft"].linkname == "a"
    third = {m.name for m in layers[2].getmembers()}
    assert ".wh.gone" in third
    assert "bin/.wh.ls" in third

    local = tmp_path / "local"
    bkpy("build", "-o", f"type=local,dest={local}", str(ctx))
    assert not (local / "gone").exists()
    assert not (local / "bin" / "ls").exists()
    assert (local / "d" / "a").read_text() == "b\n"


def test_failing_run_reports_exit_code_and_log_tail(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM busybox\nRUN echo before-failure && exit 42\n")
    r = bkpy("build", "--progress=plain", str(ctx), check=False)
    assert r.code == 1
    assert "exit code: 42" in r.err
    assert "before-failure" in r.err
    assert "Dockerfile:2" in r.err
    assert "Traceback" not in r.err


def test_arm64_run_under_emulation(bkpy: Bkpy, tmp_path: Path) -> None:
    # applets run through busybox's own re-exec and through symlinks: argv[0] must survive
    ctx = _ctx(tmp_path, "FROM busybox\nRUN uname -m > /arch && echo hi > /f && cat /f > /g "
                         "&& ls / | grep -c arch > /n\n")
    out = tmp_path / "out"
    bkpy("build", "--platform", "linux/arm64", "-o", f"type=local,dest={out}", str(ctx))
    assert (out / "arch").read_text() == "aarch64\n"
    assert (out / "g").read_text() == "hi\n"
    assert (out / "n").read_text() == "1\n"


def test_user_and_workdir(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, """\
FROM busybox
USER app
WORKDIR /work/dir
RUN id -u > uid && pwd > pwd
""")
    out = tmp_path / "out"
    bkpy("build", "-o", f"type=local,dest={out}", str(ctx))
    assert (out / "work" / "dir" / "uid").read_text() == "1000\n"
    assert (out / "work" / "dir" / "pwd").read_text() == "/work/dir\n"
    assert (out / "work" / "dir").stat().st_uid == 1000


def test_privileged_run_needs_its_entitlement(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM busybox\nRUN --security=insecure --network=host true\n")
    # The builder's config grants nothing insecure by default, as buildkitd.
    refused = bkpy("build", "--allow", "security.insecure", str(ctx), check=False)
    assert refused.code == 1
    assert ("granting entitlement security.insecure is not allowed by build daemon "
            "configuration") in refused.err
    assert "--allow-insecure-entitlement security.insecure" in refused.err  # the hint
    config = tmp_path / "bkpyd.toml"
    config.write_text('insecure-entitlements = ["network.host", "security.insecure"]\n')
    env = {"BKPY_BUILDER_CONFIG": str(config)}
    denied = bkpy("build", "--progress", "plain", str(ctx), check=False, env=env)
    assert denied.code != 0
    assert "failed to load LLB: network.host is not allowed" in denied.err
    denied = bkpy("build", "--network", "host", str(ctx), check=False, env=env)  # grants it
    assert "failed to load LLB: security.insecure is not allowed" in denied.err
    bkpy("build", "--allow", "network.host,security.insecure", str(ctx), env=env)
    unknown = bkpy("build", "--allow", "nope", str(ctx), check=False, env=env)
    assert unknown.code != 0 and "unknown entitlement nope" in unknown.err
    config.write_text('insecure-entitlements = ["root.access"]\n')
    bad = bkpy("build", str(ctx), check=False, env=env)
    assert bad.code == 2 and "unknown entitlement root.access" in bad.err
