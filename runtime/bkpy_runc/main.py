"""Console entry point of ``bkpy-runc``."""

import os
import sys

from .cli import main as _cli_main


def main() -> None:
    code = _cli_main()
    # Skip interpreter finalisation (module teardown costs ~10 ms on every run).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
