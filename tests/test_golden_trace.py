"""Golden traces: a golden case folder (golden/README.md) may hold ``trace-<name>.txt`` files,
each the exact output of ``svcctl trace --config options.yaml MANIFEST ARGS``, with ARGS on its
first line (``# svcctl trace ARGS``). Compared byte for byte through the real entry point.

Regenerate after an intended change, then review the diff:

    SVCCTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_trace.py
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from golden_check import check

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
HEADER = "# svcctl trace "
TRACES = sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.glob("*/trace-*.txt"))


def test_there_are_trace_cases() -> None:
    assert len(TRACES) >= 8, TRACES
    assert any(name.endswith("-json.txt") for name in TRACES)


@pytest.mark.parametrize("name", TRACES)
def test_golden_trace(name: str, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = GOLDEN / name
    header = path.read_text().splitlines()[0]
    assert header.startswith(HEADER), f"{name}: the first line must be '{HEADER}ARGS'"
    case = path.parent
    manifest = next(p for p in (case / "manifest.yaml", case / "manifest.json") if p.exists())
    run = run_cli("trace", str(manifest), "--config", str(case / "options.yaml"), *shlex.split(header.removeprefix(HEADER)))
    assert (run.code, run.err) == (0, ""), run.err
    if "-o json" in header:
        data = json.loads(run.out)
        assert list(data)[:7] == ["verdict", "service", "path", "endpoints", "masquerade", "affinity", "reasons"]
        if data["verdict"] == "dnat":
            assert abs(sum(e["probability"] for e in data["endpoints"]) - 1) < 1e-9
    check(path, f"{header}\n{run.out}", "svcctl trace")
