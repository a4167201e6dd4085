"""Client start-up benchmark: what a fresh ``bkpy`` command costs before any work.

Run (as the user who runs bkpy): ``python3 bench/client_bench.py [--runs N]``. With a
command server started on a private state root, it times ``--version`` commands
alternately (so machine-load drift hits all alike) and prints the median wall time of:

- ``bkpy`` (the compiled client, handing the command to the server),
- ``bkpy-py`` (the Python client, handing it over the same way),
- ``BKPY_NO_SERVER=1 bkpy`` (a fresh Python running the command itself),
- ``python3 -c pass`` and ``python3 -S -c pass`` (the interpreter's own floor).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(sysconfig.get_path("scripts"))


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bkpy-client-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("BKPY_NO_SERVER", "BKPY_DEBUG")}
    env["BKPY_ROOT"] = str(root / "state")
    bkpy, bkpy_py = str(SCRIPTS / "bkpy"), str(SCRIPTS / "bkpy-py")
    compiled = (SCRIPTS / "bkpy").read_bytes()[:4] == b"\x7fELF"
    rows = {
        f"bkpy --version ({'compiled' if compiled else 'Python'} client, via the server)":
            ([bkpy, "--version"], env),
        "bkpy-py --version (Python client, via the server)": ([bkpy_py, "--version"], env),
        "BKPY_NO_SERVER=1 bkpy --version (fresh Python runs it)":
            ([bkpy, "--version"], {**env, "BKPY_NO_SERVER": "1"}),
        "python3 -c pass": ([sys.executable, "-c", "pass"], env),
        "python3 -S -c pass": ([sys.executable, "-S", "-c", "pass"], env),
    }
    try:
        subprocess.run([bkpy, "server", "start"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        for cmd, cmd_env in rows.values():  # warm: the server's warm-up, the key file
            _time(cmd, cmd_env)
        samples: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.runs):
            for name, (cmd, cmd_env) in rows.items():
                samples[name].append(_time(cmd, cmd_env))
    finally:
        subprocess.run([bkpy, "server", "stop"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
    print(f"| command ({args.runs} runs, alternating) | median ms | min ms |")
    print("|---|---:|---:|")
    for name, values in samples.items():
        print(f"| {name} | {statistics.median(values) * 1000:.1f} | {min(values) * 1000:.1f} |")


if __name__ == "__main__":
    main()
