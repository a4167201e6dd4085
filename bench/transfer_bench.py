"""Remote context transfer through ``bkpyd``: the 20k-file / 200 MB context.

Per repetition, against a fresh daemon (own state root, unix socket in the work dir):

1. the first remote build: the whole context crosses the session;
2. the remote build after one file changed: the re-transfer (goal < 0.5 s);
3. the remote no-op rebuild, against the embedded builder's no-op rebuild of the same
   context (goal: remote within 1.2x of embedded).

Transfer times are the ``[internal] transferring context`` vertex (from ``--progress
rawjson``); build times are the whole ``bkpy build`` command, wall clock. The context is
the benchmark harness's ``context20k`` (same generator, same Dockerfile); every build
writes ``type=image`` into its builder's store.

Run (as root): ``python3 bench/transfer_bench.py [--runs 3] [--work DIR]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness.cases import CASES, change_one_file, prepare_context
from bench.harness.images import prepare_base_images

TRANSFER_VERTEX = "[internal] transferring context"
RETRANSFER_GOAL = 0.5  # seconds
NOOP_GOAL = 1.2  # remote / embedded


def _when(stamp: str) -> datetime:
    """An RFC 3339 time of rawjson (nanoseconds cut to what datetime holds)."""
    return datetime.fromisoformat(stamp[:26].rstrip("Z"))


def _bkpy() -> list[str]:
    script = Path(sys.executable).parent / "bkpy"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "buildkit_py"]


@dataclass
class Build:
    seconds: float
    transfer: float | None  # the transfer vertex, None when there was none
    transfer_log: str


@dataclass
class Samples:
    first_transfer: list[float] = field(default_factory=list)
    first_build: list[float] = field(default_factory=list)
    change_transfer: list[float] = field(default_factory=list)
    change_build: list[float] = field(default_factory=list)
    noop_remote: list[float] = field(default_factory=list)
    noop_embedded: list[float] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.client_env = {**os.environ, "BKPY_CONFIG": str(work / "client"),
                           "BKPY_ROOT": str(work / "embedded-root")}
        for key in ("BKPY_DEBUG", "BKPY_BUILDER", "SOURCE_DATE_EPOCH"):
            self.client_env.pop(key, None)
        self.daemon: subprocess.Popen[bytes] | None = None
        self.busybox = next(i for i in prepare_base_images(work / "images", toolchain=False)
                            if i.tag == "busybox:latest")

    def _run(self, *args: str, env: dict[str, str] | None = None) -> str:
        p = subprocess.run([*_bkpy(), *args], env=env or self.client_env, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise SystemExit(f"bkpy {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
        return p.stdout + p.stderr

    def _import_busybox(self, root: Path) -> None:
        self._run("image", "import", str(self.busybox.archive), "busybox:latest",
                  env={**self.client_env, "BKPY_ROOT": str(root)})

    def start_daemon(self, rep: int) -> None:
        root = self.work / f"daemon-root-{rep}"
        shutil.rmtree(root, ignore_errors=True)
        self._import_busybox(root)
        sock = self.work / "bkpyd.sock"
        sock.unlink(missing_ok=True)
        log = open(self.work / f"bkpyd-{rep}.log", "ab")
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "buildkit_py.control.daemon", "--root", str(root),
             "--addr", f"unix://{sock}"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        from buildkit_py.client.remote import RemoteClient

        client = RemoteClient(f"unix://{sock}", None)
        try:
            deadline = time.monotonic() + 60
            while not client.ping(timeout=0.5):
                if self.daemon.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bkpyd did not start; see {self.work}/bkpyd-{rep}.log")
                time.sleep(0.1)
        finally:
            client.close()
        shutil.rmtree(self.work / "client", ignore_errors=True)
        self._run("builder", "create", "--name", "bench", "--driver", "remote",
                  f"unix://{sock}", "--use")

    def stop_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            self.daemon.wait(timeout=120)
        self.daemon = None

    def build(self, ctx: Path, *, embedded: bool) -> Build:
        args = ["build", "--progress", "rawjson", "--network", "none",
                "--output", "type=image,name=transfer/bench:latest", str(ctx)]
        if embedded:
            args[1:1] = ["--builder", "default"]
        start = time.perf_counter()
        out = self._run(*args)
        seconds = time.perf_counter() - start
        transfer: float | None = None
        log = ""
        for line in out.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            # BuildKit's rawjson: RFC 3339 times, log chunks in base64
            for v in rec.get("vertexes", []):
                if v.get("name") == TRANSFER_VERTEX and "completed" in v:
                    transfer = (_when(v["completed"]) - _when(v["started"])).total_seconds()
            for entry in rec.get("logs", []):
                text = base64.b64decode(entry.get("data", "")).decode(errors="replace")
                if "transferred" in text:
                    log = text.strip()
        return Build(seconds, transfer, log)


def _need(value: float | None) -> float:
    if value is None:
        raise SystemExit("a remote build showed no context transfer")
    return value


def run(work: Path, runs: int) -> Samples:
    work.mkdir(parents=True, exist_ok=True)
    case = CASES["context20k"]
    ctx = prepare_context(case, work / "contexts")
    bench = Bench(work)
    bench._import_busybox(work / "embedded-root")
    samples = Samples()
    n = int(time.time())
    try:
        for rep in range(runs):
            bench.start_daemon(rep)
            try:
                first = bench.build(ctx, embedded=False)
                samples.first_transfer.append(_need(first.transfer))
                samples.first_build.append(first.seconds)
                change_one_file(case, ctx, n + rep)
                changed = bench.build(ctx, embedded=False)
                samples.change_transfer.append(_need(changed.transfer))
                samples.change_build.append(changed.seconds)
                samples.noop_remote.append(bench.build(ctx, embedded=False).seconds)
                samples.logs += [first.transfer_log, changed.transfer_log]
            finally:
                bench.stop_daemon()
            bench.build(ctx, embedded=True)  # warm (the context changed since last time)
            samples.noop_embedded.append(bench.build(ctx, embedded=True).seconds)
            print(f"run {rep + 1}/{runs}: first transfer {samples.first_transfer[-1]:.2f}s, "
                  f"re-transfer {samples.change_transfer[-1]:.2f}s, no-op remote "
                  f"{samples.noop_remote[-1]:.2f}s / embedded {samples.noop_embedded[-1]:.2f}s",
                  flush=True)
    finally:
        bench.stop_daemon()
    return samples


def table(s: Samples) -> str:
    med = statistics.median
    noop_ratio = med(s.noop_remote) / med(s.noop_embedded)
    retransfer = med(s.change_transfer)
    rows = [
        ("first transfer (20k files, 200 MB)", f"{med(s.first_transfer):.2f} s", "", ""),
        ("first remote build, whole command", f"{med(s.first_build):.2f} s", "", ""),
        ("re-transfer after one change", f"{retransfer:.3f} s", f"< {RETRANSFER_GOAL} s",
         "yes" if retransfer < RETRANSFER_GOAL else "NO"),
        ("remote build after one change", f"{med(s.change_build):.2f} s", "", ""),
        ("remote no-op rebuild", f"{med(s.noop_remote):.2f} s", "", ""),
        ("embedded no-op rebuild", f"{med(s.noop_embedded):.2f} s", "", ""),
        ("no-op remote / embedded", f"{noop_ratio:.2f}", f"<= {NOOP_GOAL}",
         "yes" if noop_ratio <= NOOP_GOAL else "NO"),
    ]
    lines = ["| measurement | median | goal | met |", "|---|---:|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="repetitions (median reported)")
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/bkpy-transfer-bench"),
                    help="scratch space: context, daemon and client state")
    ns = ap.parse_args()
    samples = run(ns.work, max(1, ns.runs))
    print()
    print(table(samples))
    print()
    for line in dict.fromkeys(samples.logs):
        print(f"  {line}")


if __name__ == "__main__":
    main()
