"""The project runs pytest with ``--import-mode=importlib``, which puts no test directory on ``sys.path``;
the protocol tests share builders through ``protocol_support``, so this directory is added here."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
