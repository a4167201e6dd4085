"""buildkit-py: a BuildKit-style container image builder."""

__version__ = "0.1.0"
