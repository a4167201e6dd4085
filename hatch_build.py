"""Wheel build hook: compile the ``bkpy`` client (``launcher/bkpy.c``).

``bkpy`` is the command users type before every build, and a Python console script pays
~45 ms of interpreter start-up before it can hand the command to the warm command server
(BuildKit's whole no-op rebuild takes ~60 ms). So the wheel's ``bkpy`` is a small C
program built here with the machine's C compiler (``$CC``, else ``cc``), shipped as a
wheel script; it falls back to the Python client ``bkpy-py`` (a console script) for
anything but handing over. Without a working compiler, ``bkpy`` is a Python script that
runs that same client: everything works, each command just starts an interpreter.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = os.path.join("launcher", "bkpy.c")
PYTHON_FALLBACK = "#!python\nfrom buildkit_py.cli.launch import main\n\nmain()\n"


class LauncherBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        self._tmp = tempfile.mkdtemp(prefix="bkpy-launcher-")
        out = os.path.join(self._tmp, "bkpy")
        if self._compile(out):
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
        else:
            with open(out, "w") as f:
                f.write(PYTHON_FALLBACK)
            os.chmod(out, 0o755)
        build_data["shared_scripts"][out] = "bkpy"

    def finalize(self, version: str, build_data: dict[str, Any], artifact: str) -> None:
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _compile(self, out: str) -> bool:
        cc = shlex.split(os.environ.get("CC") or "cc")
        cmd = [*cc, "-O2", "-o", out, os.path.join(self.root, SOURCE)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as err:
            print(f"bkpy: no compiled client ({err}); bkpy will be the Python client",
                  file=sys.stderr)
            return False
        if proc.returncode != 0:
            print(f"bkpy: compiling {SOURCE} failed; bkpy will be the Python client\n"
                  f"{proc.stderr}", file=sys.stderr)
            return False
        return True
