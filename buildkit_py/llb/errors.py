"""Errors raised while building or loading an LLB graph."""

from __future__ import annotations

from buildkit_py.errors import UserError


class LLBError(UserError):
    """A graph-building call got an invalid argument (bad network mode, unknown mount...)."""


class InvalidDefinitionError(LLBError):
    """A marshalled Definition is malformed (bad bytes, unknown input, cycle, bad index)."""
