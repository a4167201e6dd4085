#!/usr/bin/env python3
"""Record the build-case expectations (testdata/dockerfiles/build/*/expected.json) from real
BuildKit, i.e. the BuildKit embedded in Debian's dockerd.

    scripts/record-buildkit-golden.py [--start-dockerd] [CASE...]

Needs a running dockerd (or --start-dockerd, which starts one with no bridge and no iptables and
stops it afterwards). Builds run with ``--network=none``; nothing is pulled: the busybox base
image is made locally (tests/golden/docker_base.py) from the same bytes bkpy's tests import.
Cases whose expected.json says ``"source": "reference"`` were written by hand because this
BuildKit lacks the feature; they are skipped. Run as root on a machine with docker.io installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.golden.cases import Case, all_cases, prepare_context, write_expected  # noqa: E402
from tests.golden.docker_base import write_busybox_docker_tar  # noqa: E402
from tests.golden.expectations import record  # noqa: E402
from tests.golden.image_archive import read_docker_archive  # noqa: E402

# dockerd release line -> the BuildKit minor version it embeds (moby's vendored buildkit).
# Only lines checked by hand are listed; others are recorded as "buildkit-unknown".
BUILDKIT_OF_DOCKER = {"20.10": "v0.8"}


class RecordError(Exception):
    """A failure the user can act on; printed without a traceback."""


def docker_available(docker: str) -> bool:
    try:
        p = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and bool(p.stdout.strip())


def start_dockerd(docker: str, workdir: Path) -> subprocess.Popen[bytes]:
    if shutil.which("dockerd") is None:
        raise RecordError("dockerd not found: install Debian's docker.io (apt-get install -y "
                          "docker.io)")
    with open(workdir / "dockerd.log", "wb") as log:  # the daemon keeps its own copy
        proc = subprocess.Popen(["dockerd", "--bridge=none", "--iptables=false",
                                 "--ip-masq=false"], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(60):
        if docker_available(docker):
            break
        if proc.poll() is not None:
            raise RecordError(f"dockerd exited early; see {workdir / 'dockerd.log'}")
        time.sleep(1)
    else:
        proc.terminate()
        raise RecordError("dockerd did not become ready within 60s")
    # dockerd may still create its default bridge; the recording needs no network at all.
    subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True)
    return proc


def stop_dockerd(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(cmd: list[str], what: str) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True,
                       env=dict(os.environ, DOCKER_BUILDKIT="1"))
    if p.returncode != 0:
        raise RecordError(f"{what} failed (exit {p.returncode}):\n{p.stdout[-4000:]}"
                          f"{p.stderr[-4000:]}")
    return p.stdout


def source_label(docker: str) -> str:
    version = run([docker, "version", "--format", "{{.Server.Version}}"], "docker version").strip()
    line = ".".join(version.split(".")[:2])
    return f"buildkit-{BUILDKIT_OF_DOCKER.get(line, 'unknown')} (docker {version})"


def record_case(docker: str, case: Case, workdir: Path, source: str) -> None:
    ctx = prepare_context(case, workdir / f"{case.name}-context")
    tag = f"bkpy-golden/{case.name}:latest"
    cmd = [docker, "build", "--network=none", "--no-cache", "-f", str(case.dockerfile),
           "-t", tag]
    for key, value in case.build_args().items():
        cmd += ["--build-arg", f"{key}={value}"]
    if case.target():
        cmd += ["--target", str(case.target())]
    run([*cmd, str(ctx)], f"docker build of {case.name}")
    saved = workdir / f"{case.name}.tar"
    try:
        run([docker, "save", "-o", str(saved), tag], f"docker save of {case.name}")
    finally:
        subprocess.run([docker, "image", "rm", "-f", tag], capture_output=True)
    recorded = record(read_docker_archive(saved), list(case.expected().get("check_paths", [])))
    write_expected(case, recorded, source)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help="case names (default: all recordable cases)")
    ap.add_argument("--start-dockerd", action="store_true",
                    help="start dockerd for the recording and stop it afterwards")
    ap.add_argument("--docker", default="/usr/bin/docker", help="docker CLI (default: %(default)s)")
    args = ap.parse_args(argv)

    cases = {c.name: c for c in all_cases()}
    unknown = [n for n in args.cases if n not in cases]
    if unknown:
        raise RecordError(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(cases)}")
    chosen = [cases[n] for n in args.cases] if args.cases else list(cases.values())

    with tempfile.TemporaryDirectory(prefix="bkpy-golden-") as tmp:
        workdir = Path(tmp)
        daemon = start_dockerd(args.docker, workdir) if args.start_dockerd else None
        try:
            if not docker_available(args.docker):
                raise RecordError(
                    f"no dockerd reachable through {args.docker}: this script records from "
                    "real BuildKit and needs a running Docker daemon. Start one with "
                    "`dockerd --bridge=none --iptables=false &` or pass --start-dockerd.")
            source = source_label(args.docker)
            base = write_busybox_docker_tar(workdir / "busybox.tar")
            run([args.docker, "load", "-i", str(base)], "docker load of the busybox base")
            for case in chosen:
                if case.is_reference():
                    print(f"skip   {case.name}: written by hand from the reference")
                    continue
                record_case(args.docker, case, workdir, source)
                print(f"record {case.name}: {source}")
        finally:
            if daemon is not None:
                stop_dockerd(daemon)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except RecordError as exc:
        print(f"record-buildkit-golden: {exc}", file=sys.stderr)
        sys.exit(2)
