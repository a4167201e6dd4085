"""bkpy-runc entry point (filled in by the runtime work)."""

import sys


def main() -> None:
    sys.exit("bkpy-runc: not built yet")
