"""The corpus of hostile and invalid inputs (tests/hostile, see its README): each one through
svcctl's entry point, exit status 2, exactly the expected lines."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

HOSTILE = Path(__file__).parent / "hostile"
CASES = sorted(p for p in HOSTILE.iterdir() if p.suffix in (".yaml", ".json", ".stdin"))


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_hostile_input(case: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = (HOSTILE / f"{case.name}.expected").read_text(encoding="utf-8").splitlines()
    monkeypatch.chdir(HOSTILE)
    if case.suffix == ".stdin":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.read_bytes())))
        run = run_cli("validate", "--all-problems", "-")
    else:
        run = run_cli("validate", "--all-problems", case.name)
    assert (run.code, run.out) == (2, "")
    assert run.err.splitlines() == expected


def test_every_case_has_its_expected_lines() -> None:
    sidecars = {p.name.removesuffix(".expected") for p in HOSTILE.glob("*.expected")}
    assert sidecars == {p.name for p in CASES}
    assert len(CASES) >= 30
