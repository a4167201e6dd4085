"""``bkpy imagetools``: inspect images and combine them into indexes, in registries.

Public API (modules are small and import nothing heavy until used)::

    from buildkit_py.imagetools.access import Access
    from buildkit_py.imagetools.sources import RegistrySource, LocalSource
    from buildkit_py.imagetools.inspect import inspect
    from buildkit_py.imagetools.create import combine, push, parse_sources, parse_targets

    with Access() as acc:                                   # builder config + docker creds
        info = inspect(RegistrySource(acc.registry, parse_reference("reg:5000/app:1")))
        info.human()                 # buildx-style text
        info.raw                     # exact manifest/index bytes
        info.render("{{json .Image}}")   # template subset, see imagetools.template

        combined = combine([RegistrySource(acc.registry, r) for r in sources])
        combined.body                # the index bytes (what --dry-run prints)
        push(combined, targets, acc.registry, acc.content, report=print)

- ``access.Access(config=None)``: lazily opened ``registry`` (RegistryClient with the
  builder config's ``[registry."host"]`` settings), ``content`` and ``images`` (the builder's
  local stores); ``close()``.
- ``sources.ManifestSource``: ``root() -> Fetched``, ``manifest(digest) -> Fetched``,
  ``blob(Blob) -> bytes``; ``RegistrySource(client, ref)`` and
  ``LocalSource(images, content, ref)`` (``--local``: the local image store only).
- ``inspect.inspect(source) -> Inspection`` with ``name``, ``raw``, ``human()``,
  ``manifest_data()``, ``image_data()``, ``render(template)``.
- ``create.combine(sources) -> Combined`` (``media_type``, ``digest``, ``body``,
  ``reused``, ``manifests``); ``create.push(combined, targets, client, store, report)``.
- ``template.parse(text) -> Template`` (``render(data)``); ``TemplateError`` is a
  ``UsageError``.
"""
