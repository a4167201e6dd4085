"""BuildKit's GC rules on a real builder's cache: filters and keepDuration choose the
candidates, the size limit how many of them go (the clock moved forward with ``now``)."""

from __future__ import annotations

import time
from pathlib import Path

from buildkit_py.builder.gc_policy import PruneRule, apply_rule
from buildkit_py.builder.ownership import open_owned_builder
from buildkit_py.config import BuilderConfig
from tests.e2e.conftest import make_runner
from tests.images import write_busybox_layout

DAY = 86400.0


def _rule(filters: tuple[str, ...] = (), keep: float = 0.0, max_used: int = 0) -> PruneRule:
    return PruneRule(False, filters, keep, 0, max_used, 0)


def test_rules_select_by_type_age_and_size(tmp_path: Path) -> None:
    root = tmp_path / "root"
    bkpy = make_runner(root)
    bkpy("image", "import", str(write_busybox_layout(tmp_path / "busybox")), "busybox:latest")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a").write_text("a\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY a /a\nRUN head -c 100000 /dev/zero > /z\n")
    bkpy("build", "--progress", "quiet", str(ctx))

    with open_owned_builder(BuilderConfig(root=root), "test", wait=True) as builder:
        def ids() -> set[str]:
            return {e.result_id for e in builder.cache.usage().entries}

        start = ids()
        assert any(i.startswith("local:") for i in start)
        now = time.time()
        # used just now: a 48h rule spares everything, whatever the type
        assert apply_rule(builder, _rule(("type==source.local",), keep=2 * DAY), now) == []
        # three days later the context's record goes, and only it
        gone = apply_rule(builder, _rule(("type==source.local",), keep=2 * DAY), now + 3 * DAY)
        assert [g.id for g in gone] == [i for i in start if i.startswith("local:")]
        # a size limit larger than the cache takes nothing; a tiny one all but what fits
        assert apply_rule(builder, _rule(max_used=1 << 30), now) == []
        left = ids()
        gone = apply_rule(builder, _rule(max_used=150_000), now)
        assert gone and ids() == left - {g.id for g in gone}
        assert sum(e.size for e in builder.cache.usage().entries) < 150_000
        # descriptions are fields too
        gone = apply_rule(builder, _rule(("description~=^nothing matches",)), now)
        assert gone == []


def test_gc_asked_within_the_minute_runs_when_it_ends(tmp_path: Path) -> None:
    # as buildkitd's throttle: at most one GC a minute, and a request inside the minute is
    # not lost but runs at its end
    from buildkit_py.config import GCRule
    from buildkit_py.control.server import GC_INTERVAL, ControlService
    from buildkit_py.units import DiskSpace

    root = tmp_path / "root"
    bkpy = make_runner(root)
    bkpy("image", "import", str(write_busybox_layout(tmp_path / "busybox")), "busybox:latest")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN head -c 100000 /dev/zero > /z\n")
    bkpy("build", "--progress", "quiet", str(ctx))
    config = BuilderConfig(root=root)
    config.gc.buildkitd = True
    config.gc.rules = [GCRule(all=True, max_used_space=DiskSpace(bytes=1))]
    with open_owned_builder(config, "test", wait=True) as builder:
        service = ControlService(builder)
        before = len(builder.cache.usage().entries)
        service._last_gc = time.time() - GC_INTERVAL + 1.5
        service._maybe_gc()
        assert len(builder.cache.usage().entries) == before  # not yet
        deadline = time.monotonic() + 10
        while builder.cache.usage().entries and time.monotonic() < deadline:
            time.sleep(0.1)
        service.stop_gc()
        assert before > 0 and builder.cache.usage().entries == ()
