"""RUN --device: CDI devices from the builder's spec directories, behind the device
entitlement (BuildKit's labs feature, enabled by a labs ``# syntax=``)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Bkpy

LABS = "# syntax=docker/dockerfile:1-labs\n"
SPEC = {
    "cdiVersion": "0.6.0",
    "kind": "vendor1.com/device",
    "containerEdits": {"env": ["VENDOR=vendor1"]},
    "devices": [
        {"name": "foo", "containerEdits": {
            "env": ["FOO=injected"],
            # the host's /dev/null under the device's own name
            "deviceNodes": [{"path": "/dev/vendor1-foo", "hostPath": "/dev/null"}],
        }},
        {"name": "bar", "annotations": {"org.mobyproject.buildkit.device.autoallow": "true",
                                        "org.mobyproject.buildkit.device.class": "bars"},
         "containerEdits": {"env": ["BAR=auto"]}},
    ],
}


def _setup(tmp_path: Path, dockerfile: str, *, grant: bool = True) -> tuple[Path, dict[str, str]]:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    cdi = tmp_path / "cdi"
    cdi.mkdir(exist_ok=True)
    (cdi / "vendor1.json").write_text(json.dumps(SPEC))
    # YAML too: a second kind whose device mounts a host directory
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    (shared / "lib.txt").write_text("vendor library\n")
    (cdi / "vendor2.yaml").write_text(
        'cdiVersion: "0.6.0"\nkind: vendor2.com/gpu\ndevices:\n- name: gpu0\n'
        "  containerEdits:\n    mounts:\n"
        f"    - hostPath: {shared}\n      containerPath: /opt/vendor2\n"
        "      options: [ro, rbind]\n")
    config = tmp_path / "bkpyd.toml"
    config.write_text(("insecure-entitlements = [\"device\"]\n" if grant else "")
                      + f'[cdi]\nspec-dirs = ["{cdi}"]\n')
    return ctx, {"BKPY_BUILDER_CONFIG": str(config)}


def test_device_env_nodes_and_mounts_reach_the_step(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx, env = _setup(tmp_path, LABS + (
        "FROM busybox\n"
        "RUN --device=vendor1.com/device=foo,required --device=vendor2.com/gpu "
        "--device=vendor3.com/none=x sh -c 'env | sort > /env; ls -ln /dev/vendor1-foo "
        "> /node; cat /opt/vendor2/lib.txt > /lib'\n"))
    out = tmp_path / "out"
    bkpy("build", "--allow", "device", "-o", f"type=local,dest={out}", str(ctx), env=env)
    lines = (out / "env").read_text().splitlines()
    assert "FOO=injected" in lines and "VENDOR=vendor1" in lines
    node = (out / "node").read_text().split()
    assert node[0].startswith("c") and node[4:6] == ["1,", "3"]  # /dev/null's 1:3
    assert (out / "lib").read_text() == "vendor library\n"
    assert not (out / "dev" / "vendor1-foo").exists()  # not left in the layer


def test_device_needs_the_entitlement_unless_auto_allowed(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx, env = _setup(tmp_path, LABS + "FROM busybox\nRUN --device=vendor1.com/device=foo env\n")
    denied = bkpy("build", str(ctx), check=False, env=env)
    assert denied.code == 1
    assert denied.err.splitlines()[-2] == (
        "ERROR: failed to build: "
        "failed to solve: failed to load LLB: device vendor1.com/device=foo is "
        "requested by the build but not allowed")
    # one device by name, or all of its kind, is enough; a bare kind means its first
    # device in name order (bar), as in BuildKit
    bkpy("build", "--allow", "device=vendor1.com/device=foo", str(ctx), env=env)
    bkpy("build", "--allow", "device=vendor1.com/device=*", str(ctx), env=env)
    assert bkpy("build", "--allow", "device=vendor1.com/device", str(ctx), env=env,
                check=False).code == 1
    # an alias: the Dockerfile's name stands for the granted device
    (ctx / "Dockerfile").write_text(LABS + "FROM busybox\nRUN --device=mine env > /env\n")
    out = tmp_path / "out"
    bkpy("build", "--allow", "device=vendor1.com/device=foo,alias=mine",
         "-o", f"type=local,dest={out}", str(ctx), env=env)
    assert "FOO=injected" in (out / "env").read_text().splitlines()
    # auto-allowed by its annotation, found by its class annotation
    (ctx / "Dockerfile").write_text(LABS + "FROM busybox\nRUN --device=bars env > /env\n")
    bkpy("build", "-o", f"type=local,dest={out}", str(ctx), env=env)
    assert "BAR=auto" in (out / "env").read_text().splitlines()


def test_device_errors(bkpy: Bkpy, tmp_path: Path) -> None:
    ctx, env = _setup(tmp_path, LABS + "FROM busybox\nRUN --device=vendor9.com/x=y,required true\n")
    missing = bkpy("build", "--allow", "device", str(ctx), check=False, env=env)
    assert missing.code == 1
    assert 'required device "vendor9.com/x=y" is not registered' in missing.err
    # with a per-device grant it is found missing when the LLB loads
    missing = bkpy("build", "--allow", "device=vendor1.com/device=foo", str(ctx), check=False,
                   env=env)
    assert ('failed to load LLB: required device "vendor9.com/x=y" is not registered'
            in missing.err)
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN --device=vendor1.com/device=foo true\n")
    nolabs = bkpy("build", "--allow", "device", str(ctx), check=False, env=env)
    assert nolabs.code == 1 and nolabs.err.rstrip().splitlines()[-2] == (
        "ERROR: failed to build: "
        "failed to solve: device feature is only supported in Dockerfile frontend "
        "1.14.0-labs or later")
    ctx, env = _setup(tmp_path, LABS + "FROM busybox\nRUN --device=vendor1.com/device true\n",
                      grant=False)
    refused = bkpy("build", "--allow", "device", str(ctx), check=False, env=env)
    assert refused.code == 1 and ("granting entitlement device is not allowed by build "
                                  "daemon configuration") in refused.err
    bad = bkpy("build", "--allow", "device=x,size=1", str(ctx), check=False, env=env)
    assert bad.code == 2 and 'unknown device config key "size"' in bad.err
