"""The contract between a client and a builder: what a build asks for (``request``,
``outputs``), what builder operations return, and the gRPC wire format between ``bkpy`` and
``bkpyd``. It depends on nothing above the solver's progress types."""
