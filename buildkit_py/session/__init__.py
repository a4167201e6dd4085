"""What a client lends a build over the wire, both ends of it: context directories
(``filesync``), secrets and ssh agent connections, carried by one ``Session`` stream per
build (``stream``: the plumbing both ends share; ``client``: the end in ``bkpy``;
``daemon``: the end in ``bkpyd``). The same stream brings exporter output back to the
client, which writes it wherever it wants (the session only carries the frames)."""
