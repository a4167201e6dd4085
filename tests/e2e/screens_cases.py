"""The Dockerfiles the screens tests build, shared with their referee recorder
(``tests/e2e/record_screens.py``). ``{BASE}`` is where busybox comes from."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

MULTI_STAGE = """\
FROM {BASE} AS base
RUN echo base > /base.txt

FROM base AS one
COPY a.txt /a.txt
RUN cat /a.txt > /one.txt && echo line1 && echo err >&2

FROM base AS two
COPY b.txt /b.txt
RUN cat /b.txt > /two.txt

FROM scratch
COPY --from=one /one.txt /one.txt
COPY --from=two /two.txt /two.txt
"""

# Dockerfiles that fail before or while building; BuildKit shows each with its lines.
ERROR_CASES = {
    "unknown-instruction": "FROM {BASE}\nRUN echo one\nFOO bar\nRUN echo two\n",
    "unknown-flag": "FROM {BASE}\nRUN echo one\nCOPY --foo=1 a.txt /b\nRUN echo two\n",
    "unterminated-heredoc": "FROM {BASE}\nRUN echo one\nRUN <<EOT\necho hi\n",
    "copy-missing-file": "FROM {BASE}\nRUN echo one\nCOPY missing.txt /x\nRUN echo two\n",
    "env-expansion": "FROM {BASE}\nARG B\nENV A=${B:?must set}\nRUN echo two\n",
    "bad-duration": "FROM {BASE}\nRUN echo one\nHEALTHCHECK --interval=bad CMD x\n",
    "bad-port": "FROM {BASE}\nRUN echo one\nEXPOSE 80/xyz\n",
    "bad-mount-type": "FROM {BASE}\nRUN --mount=type=bogus echo\n",
    "copy-one-argument": "FROM {BASE}\nCOPY a.txt\n",
    "onbuild-from": "FROM {BASE}\nONBUILD FROM x\n",
    "user-no-argument": "FROM {BASE}\nWORKDIR /w\nUSER\n",
    "missing-base-image": "FROM {BASE}-nope\nRUN echo one\n",
}


def context_block(stderr: str) -> list[str]:
    """The ``Dockerfile:N`` block of a failed build's output: its header, the rules and
    the numbered lines (``>>>`` on the failing ones)."""
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Dockerfile:"))
    end = next(i for i in range(start + 2, len(lines)) if lines[i].startswith("-----"))
    return lines[start:end + 1]


# A context whose transfers BuildKit counts in bytes (``transferring context: 70.39kB``):
# nested directories, a file over one 32 KiB chunk, a symlink, a .dockerignore (that
# drops a directory and a pattern), a second Dockerfile elsewhere. FROM scratch: the
# Dockerfiles' lengths, and so their figures, do not depend on a registry's address.
TRANSFER_FILES = {
    "Dockerfile": "FROM scratch\nCOPY . /all/\nCOPY sub /s\n",
    ".dockerignore": "other\n*.md\n",
    "a.txt": "a\n",
    "big.bin": "".join(chr(32 + i % 90) for i in range(70000)),
    "sub/s.txt": "s\n",
    "sub/deep/d.txt": "d\n",
    "x.md": "x\n",
    "other/Alt.Dockerfile": "FROM scratch\nCOPY a.txt /\n",
}
TRANSFER_VERTEXES = ("[internal] load build definition from ", "[internal] load .dockerignore",
                     "[internal] load build context")


def write_transfer_context(ctx: Path) -> None:
    for name, text in TRANSFER_FILES.items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (ctx / "link").symlink_to("a.txt")


def transfer_builds(ctx: Path, build: Callable[..., str]) -> dict[str, dict[str, list[str]]]:
    """The transfer steps of four plain builds of :data:`TRANSFER_FILES` (``build(*args)``
    returns a build's stderr): the first, the same again (only changed files are sent
    again), after touching a file, with ``-f other/Alt.Dockerfile``."""
    out = {"first": transfer_blocks(build()), "again": transfer_blocks(build())}
    os.utime(ctx / "a.txt")
    out["touched"] = transfer_blocks(build())
    out["alt"] = transfer_blocks(build("-f", "other/Alt.Dockerfile"))
    return out


def transfer_blocks(stderr: str) -> dict[str, list[str]]:
    """The lines of the steps of :data:`TRANSFER_VERTEXES` in a plain screen, by step name,
    without their numbers and times (``#3 transferring context: 259B 0.0s done`` reads
    ``transferring context: 259B done``)."""
    names: dict[str, str] = {}
    blocks: dict[str, list[str]] = {}
    for line in stderr.splitlines():
        m = re.match(r"#(\d+) (.*)$", line)
        if not m:
            continue
        number, text = m.groups()
        if number not in names:
            names[number] = text
            if text.startswith(TRANSFER_VERTEXES):
                blocks[text] = []
            continue
        if names[number] in blocks:
            text = re.sub(r" \d+\.\ds done$", " done", text)
            blocks[names[number]].append(re.sub(r"^DONE \d+\.\ds$", "DONE", text))
    return blocks


# A cache mount as `du` shows it: one build, then `du --verbose` and the table, filtered to
# the cache's record. ``{CACHE_ID}`` and ``{NONCE}`` keep recordings apart in the referee's
# long-lived state (the command must differ too: BuildKit's cache keys leave cache mount
# ids out; the step's own record names the command, not the id).
DU_DOCKERFILE = """\
FROM scratch
COPY --from=busy / /
RUN --mount=type=cache,target=/cache,id={CACHE_ID} ["/bin/sh", "-c", \
"head -c 300000 /dev/zero > /cache/blob; echo {NONCE}"]
"""
BUSYBOX = Path(os.environ.get("BKPY_TEST_CACHE", "/var/cache/bkpy-test")) / "busybox-amd64"


def write_du_context(ctx: Path, cache_id: str, nonce: str) -> Path:
    """The context and the ``busy`` named context (a static busybox); the latter's path."""
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DU_DOCKERFILE.replace("{CACHE_ID}", cache_id)
                                    .replace("{NONCE}", nonce))
    busy = ctx.parent / f"{ctx.name}-busy"
    (busy / "bin").mkdir(parents=True)
    (busy / "bin" / "busybox").write_bytes(BUSYBOX.read_bytes())
    (busy / "bin" / "busybox").chmod(0o755)
    (busy / "bin" / "sh").symlink_to("busybox")
    return busy


def du_screen(text: str, cache_id: str, nonce: str) -> list[str]:
    """A ``du`` screen with what differs by run made placeholders: the record ID, its
    creation time, its age, the cache id and the nonce."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"^(ID:\s+)[0-9a-z]{25}$", r"\1{RECORD}", line)
        line = re.sub(r"^[0-9a-z]{25}\*", "{RECORD}*", line)
        line = re.sub(r"^(Created at:\s+)\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC$",
                      r"\1{TIME}", line)
        line = re.sub(r"(Less than a second|\d+ seconds?) ago", "{AGE}", line)
        out.append(line.replace(cache_id, "{CACHE_ID}").replace(nonce, "{NONCE}"))
    return out
