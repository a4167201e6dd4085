"""httpx as bkpy imports it (``registry/lean_httpx.py``): a registry round trip in a fresh
process loads neither httpx's CLI (rich, pygments) nor trio, and both stay importable."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec

from tests.registry.fixtures import RegistryServer

# Resolves an image from the registry in a fresh process, then reports what was imported
# and whether the blocked extras can still be imported afterwards.
DRIVER = """
import importlib, json, sys
from buildkit_py.registry import RegistryClient, StaticCredentials
with RegistryClient(hosts={sys.argv[1]: {"http": True}},
                    credentials=StaticCredentials({})) as client:
    try:
        client.resolve(sys.argv[1] + "/lean/missing:1")
    except Exception as err:
        kind = type(err).__name__
loaded = sorted(sys.modules)
import httpx
later = {}
for name in ("trio", "rich", "httpx._main"):
    try:
        importlib.import_module(name)
        later[name] = "ok"
    except ImportError as err:
        later[name] = str(err)
print(json.dumps({"error": kind, "loaded": loaded, "main": httpx.main.__module__,
                  "later": later}))
"""

EXTRAS = ("trio", "rich", "pygments", "httpx._main")


def test_registry_request_loads_no_optional_extras(registry: RegistryServer) -> None:
    proc = subprocess.run([sys.executable, "-c", DRIVER, registry.host],
                          capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(proc.stdout)
    assert report["error"] == "NotFoundError"  # a real round trip to the registry
    loaded = set(report["loaded"])
    assert {"httpx", "httpcore", "h11"} <= loaded
    assert [m for m in loaded if m.startswith(EXTRAS)] == []
    assert report["main"] == "httpx"  # httpx's own fallback for a missing CLI extra
    for name, outcome in report["later"].items():
        installed = find_spec(name.split(".")[0]) is not None
        if name == "httpx._main":
            installed = all(find_spec(m) is not None for m in ("rich", "pygments", "click"))
        if installed:
            assert outcome == "ok", name
