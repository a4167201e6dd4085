"""Getting a build's result out: one exporter per ``--output`` kind.

``base`` is the interface, ``kinds`` the table choosing an exporter for each output;
``image_store`` (image, registry), ``oci``, ``docker``, ``local`` and ``tar`` are the
kinds. What image exports share: ``image_sets`` (a build's images, made once),
``image`` (config and manifest), ``layers`` (layer blobs, compressed once),
``manifest`` (exact JSON bytes), ``oci_layout`` (the layout writer).
"""
