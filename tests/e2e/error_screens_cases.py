"""The failed builds whose whole error screen ``test_error_screens.py`` pins, shared with its
referee recorder (``tests/e2e/record_error_screens.py``). ``{BASE}`` is where busybox comes
from; every case writes its result to a local directory, so buildx's warning about a build
without output never shows."""

from __future__ import annotations

import re

RUN_FAILS = "FROM {BASE}\nRUN exit 3\n"
MISSING_BASE = "FROM {BASE}-nope\nRUN echo one\n"
# FromAsCasing warns: the summary of warnings comes between the step's block and the snippet
WARNED_RUN_FAILS = "FROM {BASE} as base\nRUN exit 3\n"
BUILDS = "FROM {BASE}\nRUN true\n"

# name -> (Dockerfile, bkpy/buildx build arguments before the context)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "run-fails-plain": (RUN_FAILS, ("--progress", "plain")),
    "run-fails-quiet": (RUN_FAILS, ("--progress", "quiet")),
    "run-fails-rawjson": (RUN_FAILS, ("--progress", "rawjson")),
    "warned-run-fails-plain": (WARNED_RUN_FAILS, ("--progress", "plain")),
    "missing-base-plain": (MISSING_BASE, ("--progress", "plain")),
    "missing-base-quiet": (MISSING_BASE, ("-q",)),
    "missing-base-rawjson": (MISSING_BASE, ("--progress", "rawjson")),
    "quiet-with-plain": (BUILDS, ("-q", "--progress", "plain")),
    "quiet-with-tty": (BUILDS, ("--progress=tty", "--quiet")),
    "quiet-with-rawjson": (BUILDS, ("-q", "--progress", "rawjson")),
    "annotation-type-unknown": (BUILDS, ("--progress", "plain", "--annotation", "foo:x=1")),
    "platform-unparsable": (BUILDS, ("--progress", "plain", "--platform", "linux/bad/x/y")),
}

_PROGRESS_LINE = re.compile(r"#\d+ |\{")
_STEP_NUMBER = re.compile(r"#\d+ ")


def shows_progress(stderr: str) -> bool:
    """Whether any progress was printed (a flag error stops the build before it starts)."""
    return any(_PROGRESS_LINE.match(line) for line in stderr.splitlines())


def screen(stderr: str) -> list[str]:
    """What a failed build prints after its progress: the failing step's ``ERROR`` line
    (without its step number, which differs with the steps shown before), then everything
    after the last progress line."""
    lines = stderr.splitlines()
    last = max((i for i, line in enumerate(lines) if _PROGRESS_LINE.match(line)), default=-1)
    head = []
    if last >= 0 and " ERROR: " in lines[last] and lines[last].startswith("#"):
        head = [_STEP_NUMBER.sub("", lines[last], count=1)]
    return head + lines[last + 1:]
