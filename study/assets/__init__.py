"""The asset layer, below RQ1, RQ3 and the case study: the zoo and the assets around it (CONTRIBUTING.md, Layout)."""
from __future__ import annotations

import os
from pathlib import Path

from study import config


def zoo_dir() -> Path:
    """The built embedded zoo (`<cache>/zoo`; `STUDY_ZOO_DIR` overrides: one zoo for several caches, e.g. the test
    suite's, whose builds are keyed and locked like any other)."""
    return Path(os.environ.get("STUDY_ZOO_DIR") or config.cache_dir() / "zoo")
