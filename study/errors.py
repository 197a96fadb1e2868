"""The one exception type the CLI turns into a one-line message (what, where, how to fix)."""
from __future__ import annotations


class StudyError(Exception):
    """Bad input or a missing prerequisite; the message says what, where and how to fix it."""
