"""The Dockerfiles the screens tests build, shared with their referee recorder
(``tests/e2e/record_screens.py``). ``{BASE}`` is where busybox comes from."""

from __future__ import annotations

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
