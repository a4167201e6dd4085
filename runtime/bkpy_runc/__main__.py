"""``python -m bkpy_runc`` or, fastest, ``python -S -I path/to/bkpy_runc/__main__.py``."""

import os
import sys

if __package__ in (None, ""):
    # Run as a script (e.g. with -S, where site-packages is not on sys.path).
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]  # our module names must not shadow anything as top-level names
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bkpy_runc.main import main

main()

