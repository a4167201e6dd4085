"""``bkpy build --progress plain`` says why each step that ran was not cached."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.e2e.conftest import Bkpy

DOCKERFILE = """\
FROM busybox AS base
ARG VERSION=1
RUN echo v$VERSION > /v
COPY src /src
RUN cat /src/a.c > /b

FROM busybox
COPY --from=base /b /b
RUN echo done
"""


def misses(err: str) -> dict[str, str]:
    """Step name -> the reason printed for it (``#N cache miss: ...`` after ``#N name``)."""
    names: dict[str, str] = {}
    out: dict[str, str] = {}
    for line in err.splitlines():
        m = re.match(r"#(\d+) (.*)$", line)
        if not m:
            continue
        num, rest = m.groups()
        if rest.startswith("cache miss: "):
            out[names[num]] = rest.removeprefix("cache miss: ")
        elif num not in names:
            names[num] = rest
    return out


def step(found: dict[str, str], prefix: str) -> str | None:
    hits = [reason for name, reason in found.items() if name.startswith(prefix)]
    assert len(hits) <= 1, found
    return hits[0] if hits else None


def test_each_miss_is_explained(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "src" / "a.c").write_text("a\n")
    (ctx / "src" / "b.c").write_text("b\n")

    def build(*args: str) -> dict[str, str]:
        return misses(fresh_bkpy("build", "--progress", "plain", *args, str(ctx)).err)

    first = build()
    assert step(first, "[base 2/4] RUN") == "no cache for this step yet"
    assert step(first, "[stage-1 3/3] RUN") == "no cache for this step yet"
    assert all(r == "no cache for this step yet" for r in first.values()), first
    assert not any(n.startswith("[internal]") for n in first)

    assert build() == {}  # every step cached: no reason printed

    (ctx / "src" / "a.c").write_text("changed\n")
    changed = build()
    assert step(changed, "[base 3/4] COPY src /src") == "context file src/a.c changed"
    assert step(changed, "[base 4/4] RUN") == (
        "parent step [base 3/4] COPY src /src was rebuilt")
    assert step(changed, "[stage-1 2/3] COPY --from=base") == (
        "files from [base 4/4] RUN cat /src/a.c > /b changed")
    assert step(changed, "[base 2/4]") is None  # cached

    (ctx / "src" / "new.c").write_text("n\n")
    (ctx / "src" / "b.c").unlink()
    files = build()
    assert step(files, "[base 3/4] COPY") == (
        "context files changed: src/new.c (added), src/b.c (removed)")

    meta = tmp_path / "meta.json"
    args = build("--build-arg", "VERSION=2", "--metadata-file", str(meta))
    assert step(args, "[base 2/4] RUN echo v2") == "build arg VERSION changed"
    assert step(args, "[base 3/4] COPY") == "parent step [base 2/4] RUN echo v2 > /v was rebuilt"
    recorded = json.loads(meta.read_text())["bkpy.cache.misses"]
    assert {m["name"]: m["reason"] for m in recorded} == args
    assert all(m["vertex"].startswith("sha256:") for m in recorded)

    nocache = build("--no-cache-filter", "base", "--build-arg", "VERSION=2")
    assert step(nocache, "[base 2/4]") == "cache disabled for this step (--no-cache-filter)"
    everything = build("--no-cache", "--build-arg", "VERSION=2")
    assert set(everything.values()) == {"cache disabled (--no-cache)"}


def test_rawjson_carries_the_reason(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /x\n")
    err = fresh_bkpy("build", "--progress", "rawjson", str(ctx)).err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    found = [m for rec in lines for m in rec.get("bkpy.cacheMisses", [])]
    # the image's unpack and the RUN ran
    assert [m["reason"] for m in found] == ["no cache for this step yet"] * 2
