"""What a builder asks a registry, by kind of request: the unit in which registry
behaviour is recorded from the referee (scripts/record-referee-registry.py, into
testdata/referee-registry/) and compared (tests/e2e/test_registry_traffic.py).

Each scenario runs against a fresh registry behind a recording proxy; the requests are
counted by kind, so the order in which concurrent transfers happen does not matter.
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Iterable
from pathlib import Path

RECORDED = Path(__file__).resolve().parents[2] / "testdata" / "referee-registry"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def kind(method: str, path: str) -> str:
    """``HEAD manifest by tag``, ``POST upload mount``, ``PUT upload``, ..."""
    if "/manifests/" in path:
        ref = path.rsplit("/manifests/", 1)[1]
        return f"{method} manifest by {'digest' if _DIGEST.fullmatch(ref) else 'tag'}"
    if "/blobs/uploads/" in path:
        return f"{method} upload mount" if "mount=" in path else f"{method} upload"
    if "/blobs/" in path:
        return f"{method} blob"
    return f"{method} {path}"


def traffic(requests: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Requests counted by :func:`kind`, sorted by kind."""
    counts = collections.Counter(kind(m, p) for m, p in requests
                                 if p.startswith("/v2/") and p != "/v2/")
    return dict(sorted(counts.items()))


def recorded(scenario: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((RECORDED / f"{scenario}.json").read_text())
    return data
