#!/usr/bin/env bash
# The project's test command: set up the machine, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
$PY -m ruff check buildkit_py runtime tests bench scripts hatch_build.py
$PY -m mypy buildkit_py runtime/bkpy_runc hatch_build.py
$PY -m pytest -q -p no:cacheprovider "$@"
