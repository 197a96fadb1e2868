"""Environment variables set for a while: libraries that read their settings from the environment (tensorflow_hub's
TFHUB_CACHE_DIR, our STUDY_CACHE_DIR) are pointed elsewhere for one call, and the old values come back after."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def scoped_environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
