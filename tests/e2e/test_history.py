"""``bkpy history``: every build recorded as it runs, with its whole logs (nothing clipped),
its outcome and failing step; rm, export/import to another root, and retention."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import (
    Bkpy,
    builds_with_two_history_entries,
    history_build_args,
    make_runner,
)

BIG = 3 * 1024 * 1024  # over BuildKit's 2 MiB clip of a step's log
DOCKERFILE = f"""\
FROM busybox:latest
ARG GREETING=hi
RUN echo "$GREETING" && yes 0123456789abcdef | head -c {BIG}
RUN echo on-stderr >&2 && exit 3
"""


def _ctx(tmp_path: Path, text: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(text)
    return ctx


def _records(bkpy: Bkpy) -> list[dict]:
    return json.loads(bkpy("history", "ls", "--format", "json").out)


def test_builds_are_recorded_with_whole_logs_and_the_failing_step(
        fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, DOCKERFILE)
    failed = fresh_bkpy("build", "--network", "none", "--build-arg", "GREETING=hello",
                        str(ctx), check=False)
    assert failed.code == 1
    (ctx / "Dockerfile").write_text(DOCKERFILE.rsplit("RUN", 1)[0])
    fresh_bkpy("build", "--network", "none", "--build-arg", "GREETING=hello", "-t", "h:1",
               "--load", str(ctx))

    newest, older = _records(fresh_bkpy)
    assert (newest["status"], older["status"]) == ("completed", "failed")
    assert newest["request"]["build_args"] == {"GREETING": "hello"}
    assert newest["request"]["tags"] == ["h:1"] and newest["image_id"].startswith("sha256:")
    assert newest["cached"] >= 1  # the big RUN came from the failed build's cache
    assert "exit code: 3" in older["error"]
    failing = older["failed_step"]
    assert failing["name"].endswith("RUN echo on-stderr >&2 && exit 3")

    listing = fresh_bkpy("history", "ls").out
    assert listing.splitlines()[0].split() == ["BUILD", "ID", "NAME", "STATUS", "CREATED",
                                               "AT", "DURATION"]
    assert "Failed" in listing and "Completed" in listing

    shown = fresh_bkpy("history", "inspect", older["ref"][:8]).out
    assert "Status:" in shown and "Failed" in shown
    assert f"Failed step: #{failing['index']}" in shown
    assert "Build arg:" in shown and "GREETING=hello" in shown
    as_json = json.loads(fresh_bkpy("history", "inspect", "^1", "--format", "json").out)
    assert as_json["ref"] == older["ref"] and "exit 3" in as_json["dockerfile"]

    # the whole log of the big step, byte for byte (BuildKit would stop at 2 MiB)
    big = next(s for s in older["steps"] if "yes 0123456789abcdef" in s["name"])
    log = fresh_bkpy("history", "logs", older["ref"], "--step", str(big["index"])).out
    expected = "hello\n" + ("0123456789abcdef\n" * (BIG // 17 + 1))[:BIG]
    assert len(log) == len(expected) and log == expected
    err_log = fresh_bkpy("history", "logs", older["ref"], "--step",
                         str(failing["index"])).out
    assert err_log == "on-stderr\n"

    replay = fresh_bkpy("history", "logs", older["ref"]).out
    assert f"#{failing['index']} ERROR:" in replay and "on-stderr" in replay
    assert f"#{big['index']} DONE" in replay

    bad = fresh_bkpy("history", "logs", "nosuchref", check=False)
    assert bad.code == 1 and "no build 'nosuchref'" in bad.err and "Traceback" not in bad.err
    missing_step = fresh_bkpy("history", "logs", older["ref"], "--step", "99", check=False)
    assert missing_step.code == 1 and "no step #99" in missing_step.err


def test_export_import_and_rm(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "FROM busybox:latest\nRUN echo exported-log\n")
    fresh_bkpy("build", "--network", "none", str(ctx))
    (record,) = _records(fresh_bkpy)
    bundle = tmp_path / "build.tar.gz"
    fresh_bkpy("history", "export", "-o", str(bundle))

    other = make_runner(tmp_path / "other")  # another machine: an empty root
    assert other("history", "import", str(bundle)).out.strip() == record["ref"]
    (imported,) = _records(other)
    assert imported == record
    assert "exported-log" in other("history", "logs").out
    again = other("history", "import", str(bundle), check=False)
    assert again.code != 0 and "already in the history" in again.err
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar")
    bad = other("history", "import", str(junk), check=False)
    assert bad.code != 0 and "not a history bundle" in bad.err

    assert fresh_bkpy("history", "rm", record["ref"]).out.strip() == record["ref"]
    assert _records(fresh_bkpy) == []
    assert "no builds in the history" in fresh_bkpy("history", "inspect", check=False).err


def test_retention_keeps_the_newest_entries(fresh_bkpy: Bkpy, tmp_path: Path) -> None:
    env = builds_with_two_history_entries(fresh_bkpy, tmp_path, 3)
    assert history_build_args(fresh_bkpy, env) == ["2", "1"]
    config = tmp_path / "bkpyd.toml"
    config.write_text("[history]\nmax-entries = -1\n")
    bad = fresh_bkpy("history", "ls", env=env, check=False)
    assert bad.code != 0 and "max-entries" in bad.err
