"""httpx for bkpy, imported without the optional extras the registry client never runs.

Every bkpy module gets httpx from here (``from buildkit_py.registry.lean_httpx import
httpx``), so that the first import in a process is this one. httpx and httpcore import two
optional extras as soon as they load, whether or not anything uses them:

- ``httpx._main``, httpx's own command-line client (the ``httpx`` console script, a
  process of its own), with click, rich and pygments: ~70 ms when ``httpx[cli]`` is there;
- ``trio``, which httpcore's async classes use when they run under trio (~55 ms).

bkpy uses httpx's synchronous client only, so while httpx and httpcore load here those two
imports fail, as if the extras were not installed (a ``None`` entry in ``sys.modules``),
and httpx and httpcore take their own fallbacks: ``httpx.main`` prints how to install the
CLI, and httpcore's async classes refuse to run under trio. The entries are removed
straight after, so ``import trio``, ``import rich`` or ``import httpx._main`` later in the
process work as usual. A process where something imported httpx (or httpcore) first keeps
the full import: this module then only hands that module on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def _without_optional_extras() -> Iterator[None]:
    blocked = []
    if "httpx" not in sys.modules:
        blocked.append("httpx._main")
    if "httpcore" not in sys.modules and "trio" not in sys.modules:
        blocked.append("trio")
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # "not installed"
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


with _without_optional_extras():
    # httpcore loads when the first transport is made; here, so that it loads without trio.
    import httpcore  # noqa: F401
    import httpx as httpx  # the re-export every bkpy module uses
