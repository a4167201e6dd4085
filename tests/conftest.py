"""Suite-wide settings.

Commands the tests run neither use nor start the warm command server
(``BKPY_NO_SERVER=1``): every temporary state root would otherwise get a server that
outlives its test by the idle timeout. Tests about the server set ``BKPY_NO_SERVER=0`` for
their commands and stop every server they cause (tests/cli/test_cmdserver*.py).
"""

from __future__ import annotations

import os

os.environ["BKPY_NO_SERVER"] = "1"
