"""Comparing output with a golden file, and the update mode every golden test shares: with
SVCCTL_UPDATE_GOLDEN=1 a differing (or missing) file is rewritten and the test then fails,
naming it, so that nothing is accepted until someone has read `git diff golden/`."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

UPDATE = os.environ.get("SVCCTL_UPDATE_GOLDEN") == "1"
ROOT = Path(__file__).resolve().parent.parent


def check(path: Path, actual: str, what: str) -> None:
    """``actual`` (the output of ``what``, e.g. "svcctl compile") must equal the file's text."""
    expected = path.read_text() if path.exists() else None
    shown = path.relative_to(ROOT)
    if UPDATE:
        if expected != actual:
            path.write_text(actual)
            pytest.fail(f"updated {shown}: review `git diff golden/`, then run again without SVCCTL_UPDATE_GOLDEN", pytrace=False)
        return
    assert expected is not None, f"{shown} is missing: run with SVCCTL_UPDATE_GOLDEN=1 to create it"
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True), str(shown), what))
        pytest.fail(f"{what} differs from {shown} (SVCCTL_UPDATE_GOLDEN=1 regenerates it for review):\n{diff}", pytrace=False)
