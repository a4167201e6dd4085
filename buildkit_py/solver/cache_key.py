"""Cache keys: content-addressed identities of op results that survive across builds.

A vertex key hashes the op's cache-map digest with one component per input: either the
input edge's key (a "fast", definition-based key) or a digest of the selected content of
the input's result (a "slow", content-based key), each with the selectors used. An edge
key adds the output index. The algorithm is versioned: changing it must change
``KEY_VERSION`` so old records simply stop matching.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

KEY_VERSION = b"bkpy-cachekey-v1"


@dataclass(frozen=True, slots=True)
class KeyInput:
    """One input's contribution to a vertex key (also stored as a debug link)."""

    key: str
    selectors: tuple[str, ...] = ()
    content: bool = False
    # For a content input: the input's edge key (not hashed; recorded so an exported
    # cache can tell an importer the checksum without the input's layers).
    source: str = ""


def vertex_key(cachemap_digest: str, inputs: Sequence[KeyInput]) -> str:
    """Key of a vertex from its op digest and per-input components (order matters)."""
    h = hashlib.sha256(KEY_VERSION)
    h.update(b"\0op\0")
    h.update(cachemap_digest.encode())
    for i, inp in enumerate(inputs):
        # Length-free framing is safe: every field is NUL-terminated and NUL-free.
        h.update(b"\0in\0%d\0%s\0%s\0" % (i, b"c" if inp.content else b"k", inp.key.encode()))
        for sel in inp.selectors:
            h.update(b"sel\0" + sel.encode() + b"\0")
    return "sha256:" + h.hexdigest()


def edge_key(vkey: str, index: int) -> str:
    """Key of output ``index`` of a vertex whose key is ``vkey``."""
    return "sha256:" + hashlib.sha256(b"%s@%d" % (vkey.encode(), index)).hexdigest()
