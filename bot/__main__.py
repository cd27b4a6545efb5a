"""``python -m bot``: the composition root of the whole service (same as ``surgedca run``).

The bot runs inside the service's one event loop (``trading/service.py``
wires aiogram's dispatcher next to the engine); it is never started alone,
because it only ever talks to the service API.
"""

from __future__ import annotations

import sys

from trading.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
