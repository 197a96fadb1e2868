"""Every exception and warning class of the package, in one place.

`StudyError` is what the CLI turns into a one-line message (what, where, how to fix), exit code 2; the others
are its kinds (so a caller can catch one) plus two that are not errors: `Skipped` (an exporter not run in this
mode) and `DatasetWarning` (files skipped while reading a data set).
"""
from __future__ import annotations

# One exit-code rule for every `python -m study` subcommand (finetune, browser-test, deploy, ...):
EXIT_OK = 0  # every run done; rows deliberately not run (skipped, not runnable here) count as done
EXIT_SOME_FAILED = 1  # some runs failed; their rows and all other results are written all the same
EXIT_BAD_INPUT = 2  # a StudyError: one `error:` line on stderr, nothing run (also argparse's usage errors)


def exit_code(n_failed: int) -> int:
    """The exit status of a command that ran its runs and wrote their results: EXIT_OK or EXIT_SOME_FAILED."""
    return EXIT_SOME_FAILED if n_failed else EXIT_OK


class StudyError(Exception):
    """Bad input or a missing prerequisite; the message says what, where and how to fix it."""


class ProfileError(StudyError, ValueError):
    """An unknown profile, or a profile whose inputs are not available."""


class DatasetWarning(UserWarning):
    """Files that were skipped while reading a data set (corrupt or not images)."""


class CatalogError(StudyError):
    """A snapshot folder that is missing or unusable, an unknown zoo, or warnings under --strict."""


class SamplerError(StudyError):
    """The sampler could not start, or died while sampling."""


class Skipped(Exception):
    """An exporter deliberately not run in this mode (e.g. AOTInductor in --quick); the row says why."""


class ResumeWarning(UserWarning):
    """A result of an interrupted run was found damaged (truncated, unreadable, half-written); it is redone."""
