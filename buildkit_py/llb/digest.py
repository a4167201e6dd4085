"""Vertex digests: sha256 over an op's deterministic protobuf serialisation."""

from __future__ import annotations

import hashlib

from buildkit_py.llb import ops_pb2


def serialize_op(op: ops_pb2.Op) -> bytes:
    """Return the canonical bytes of ``op`` (map entries sorted by key)."""
    return op.SerializeToString(deterministic=True)


def digest_bytes(data: bytes) -> str:
    """Return ``sha256:<hex>`` of already serialised op bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_op(op: ops_pb2.Op) -> str:
    """Return the vertex digest of ``op``."""
    return digest_bytes(serialize_op(op))
