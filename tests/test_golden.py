"""Golden rulesets: every folder under golden/ holds a manifest, node options and the exact
``svcctl compile`` output (golden/README.md). Each case is compiled in-process and compared byte
for byte; each expected.nft is also loaded by the real kernel in a throwaway network namespace.

Regenerate after an intended change, then review the diff:

    SVCCTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import difflib
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from svcctl.options import build_options
from svcctl.sources import read_config, read_manifests
from svcctl.pipeline import compile_rules

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("SVCCTL_UPDATE_GOLDEN") == "1"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def _manifest(case: Path) -> Path:
    found = [p for p in (case / "manifest.yaml", case / "manifest.json") if p.exists()]
    assert len(found) == 1, f"{case.name}: needs exactly one manifest.yaml or manifest.json"
    return found[0]


def _compile(case: Path) -> str:
    options_file = case / "options.yaml"
    # Without a node name svcctl takes the hostname: the output would depend on the machine.
    assert "node-name" in (yaml.safe_load(options_file.read_text()) or {}), f"{case.name}: options.yaml must set node-name"
    options = build_options({}, read_config(str(options_file)))
    return compile_rules(read_manifests([str(_manifest(case))]), options)[2].text


def test_there_are_cases() -> None:
    assert len(CASES) >= 30, CASES


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    case = GOLDEN / name
    expected_file = case / "expected.nft"
    actual = _compile(case)
    if UPDATE:
        if not expected_file.exists() or expected_file.read_text() != actual:
            expected_file.write_text(actual)
        return
    assert expected_file.exists(), f"{name}: no expected.nft; run with SVCCTL_UPDATE_GOLDEN=1 to create it"
    expected = expected_file.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                f"golden/{name}/expected.nft", "svcctl compile",
            )
        )
        pytest.fail(f"compile output differs from golden/{name}/expected.nft "
                    f"(SVCCTL_UPDATE_GOLDEN=1 to accept):\n{diff}", pytrace=False)


# ---- the kernel accepts every expected ruleset ----------------------------------------------


def _kernel_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "loading rulesets needs root (unshare -n and nft -f)"
    for tool in ("nft", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "-n", "nft", "list", "ruleset"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot run nft in a new network namespace: {probe.stderr.strip()}"
    return None


KERNEL_SKIP = _kernel_skip_reason()


@pytest.mark.skipif(KERNEL_SKIP is not None, reason=KERNEL_SKIP or "")
@pytest.mark.parametrize("name", CASES)
def test_kernel_loads_expected_twice(name: str) -> None:
    """A real load into an empty throwaway namespace (dry runs have accepted what the commit then
    refused, kernel-notes.md), then the same file again onto the live tables, which is what
    `svcctl apply` does on every re-apply. The namespace goes away with the unshare process."""
    expected_file = GOLDEN / name / "expected.nft"
    if not expected_file.exists():
        pytest.skip("no expected.nft yet")
    path = str(expected_file)
    script = 'nft -f "$1" && nft -f "$1" && nft list tables'
    done = subprocess.run(["unshare", "-n", "sh", "-c", script, "sh", path], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"nft refused golden/{name}/expected.nft:\n{done.stderr}"
    table = yaml.safe_load((GOLDEN / name / "options.yaml").read_text()).get("table", "svcctl")
    assert done.stdout.splitlines() == [f"table ip {table}", f"table ip6 {table}"], done.stdout


# ---- determinism ----------------------------------------------------------------------------


def test_compile_is_deterministic(tmp_path: Path) -> None:
    """Same bytes twice, and the same bytes whatever the order of the input documents."""
    case = GOLDEN / "large-mixed"
    first, second = _compile(case), _compile(case)
    assert first == second
    docs = list(yaml.safe_load_all(_manifest(case).read_text()))
    for seed in range(3):
        random.Random(seed).shuffle(docs)
        shuffled = tmp_path / f"shuffled-{seed}.yaml"
        shuffled.write_text(yaml.safe_dump_all(docs))
        options = build_options({}, read_config(str(case / "options.yaml")))
        text = compile_rules(read_manifests([str(shuffled)]), options)[2].text
        assert text == first, f"document order changed the output (seed {seed})"


def test_compile_is_independent_of_file_order(tmp_path: Path) -> None:
    """Several manifests: the order they are given in does not matter either."""
    case = GOLDEN / "large-mixed"
    docs = list(yaml.safe_load_all(_manifest(case).read_text()))
    half = len(docs) // 2
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump_all(docs[:half]))
    b.write_text(yaml.safe_dump_all(docs[half:]))
    options = build_options({}, read_config(str(case / "options.yaml")))
    ab = compile_rules(read_manifests([str(a), str(b)]), options)[2].text
    ba = compile_rules(read_manifests([str(b), str(a)]), options)[2].text
    assert ab == ba == _compile(case)
