"""bkpy-runc: the bundled low-level OCI runtime with a runc-compatible CLI.

A separate program that knows bundles, not builds: it imports only the standard library.
"""

__version__ = "0.1.0"
OCI_VERSION = "1.0.2"
