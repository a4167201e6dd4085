"""Cache that travels: ``--cache-to`` / ``--cache-from`` in BuildKit's remote-cache layout
(registry, local OCI layout, inline in the image config), with bkpy's own cache keys.

``spec`` parses and checks the options, ``config`` is the cache config format,
``export`` writes a build's records and layer blobs, ``importer`` reads a cache once per
build and serves it lazily to the solver (``solver.imports.CacheSource``).
"""
