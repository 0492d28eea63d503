"""Golden rulesets (golden/README.md): every folder under golden/ holds a manifest, node options
and what ``svcctl compile`` makes of them, split for reviewers: each case's expected.nft holds
what its Service ports put into the tables, with one line standing for each table's frame; the
frames themselves (hook chains, set declarations: the same for every case with the same node
options) are in golden/frame.nft, once each. Each case is compiled in-process and compared byte
for byte; the compiled ruleset is also loaded by the real kernel in a throwaway namespace.

After an intended change, regenerate, then review the diff and run again:

    SVCCTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py   # writes, then fails
    git diff golden/
"""

from __future__ import annotations

import difflib
import os
import random
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from golden_check import check
from svcctl.backends import Compiled
from svcctl.nftables.listing import normalize
from svcctl.nftables.render import Section, listing, sections
from svcctl.options import build_options
from svcctl.pipeline import compile_rules
from svcctl.sources import read_config, read_manifests

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
FRAMES = GOLDEN / "frame.nft"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
FRAME_LINE = "# frame: {} (golden/frame.nft)\n"


def _manifest(case: Path) -> Path:
    found = [p for p in (case / "manifest.yaml", case / "manifest.json") if p.exists()]
    assert len(found) == 1, f"{case.name}: needs exactly one manifest.yaml or manifest.json"
    return found[0]


@lru_cache(maxsize=None)
def _compile(name: str, backend: str = "nftables") -> Compiled:
    """Case ``name`` compiled for ``backend`` (tests/test_golden_iptables.py takes it too)."""
    case = GOLDEN / name
    options_file = case / "options.yaml"
    # Without a node name svcctl takes the hostname: the output would depend on the machine.
    assert "node-name" in (yaml.safe_load(options_file.read_text()) or {}), f"{name}: options.yaml must set node-name"
    options = build_options({}, read_config(str(options_file)))
    return compile_rules(read_manifests([str(_manifest(case))]), options, backend)[2]


def _case_text(parts: list[Section]) -> str:
    return "".join(FRAME_LINE.format(p.variant) if p.frame else p.text for p in parts)


def _frames_text() -> str:
    """Every frame any case uses, once, in the order of their names."""
    frames = {p.variant: p.text for name in CASES for p in sections(_compile(name).rules) if p.frame}
    return "".join(f"# ==== frame: {variant}\n{frames[variant]}" for variant in sorted(frames))


def test_there_are_cases() -> None:
    assert len(CASES) >= 30, CASES


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    compiled = _compile(name)
    parts = sections(compiled.rules)
    # The split is only a view: its parts are the compiled text, in order.
    assert compiled.text.split("\n", 1)[1] == "".join(p.text for p in parts)
    check(GOLDEN / name / "expected.nft", _case_text(parts), "svcctl compile")


def test_frames() -> None:
    check(FRAMES, _frames_text(), "the frames of svcctl compile")


def test_a_frame_change_touches_only_the_frame_golden() -> None:
    """Case goldens name a frame by what it depends on, not by its hash: a template edit in the
    frame changes golden/frame.nft alone."""
    for name in CASES:
        assert not re.search(r"frame-[0-9a-f]{16}", (GOLDEN / name / "expected.nft").read_text()), name


# ---- the kernel accepts every compiled ruleset ---------------------------------------------


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
def test_kernel_loads_the_ruleset_twice(name: str, tmp_path: Path) -> None:
    """A real load into an empty throwaway namespace (dry runs have accepted what the commit then
    refused, docs/kernel-notes.md), then the same file again onto the live tables, which is what
    `svcctl apply` does on every re-apply. The namespace goes away with the unshare process."""
    path = tmp_path / "ruleset.nft"
    path.write_text(_compile(name).text)
    script = 'nft -f "$1" && nft -f "$1" && nft list tables'
    done = subprocess.run(["unshare", "-n", "sh", "-c", script, "sh", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"nft refused the ruleset of golden/{name}:\n{done.stderr}"
    table = yaml.safe_load((GOLDEN / name / "options.yaml").read_text()).get("table", "svcctl")
    assert done.stdout.splitlines() == [f"table ip {table}", f"table ip6 {table}"], done.stdout


# ---- determinism ----------------------------------------------------------------------------


def test_compile_is_deterministic(tmp_path: Path) -> None:
    """Same bytes twice, and the same bytes whatever the order of the input documents."""
    case = GOLDEN / "large-mixed"
    first = _compile("large-mixed").text
    options = build_options({}, read_config(str(case / "options.yaml")))
    assert compile_rules(read_manifests([str(_manifest(case))]), options)[2].text == first
    docs = list(yaml.safe_load_all(_manifest(case).read_text()))
    for seed in range(3):
        random.Random(seed).shuffle(docs)
        shuffled = tmp_path / f"shuffled-{seed}.yaml"
        shuffled.write_text(yaml.safe_dump_all(docs))
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
    assert ab == ba == _compile("large-mixed").text


@pytest.mark.skipif(KERNEL_SKIP is not None, reason=KERNEL_SKIP or "")
@pytest.mark.parametrize("name", CASES)
def test_the_kernel_lists_what_diff_predicts(name: str, tmp_path: Path) -> None:
    """`svcctl diff` compares the live listing with the listing it predicts from the plan
    (svcctl.nftables.render.listing), without loading anything: the kernel must list exactly
    that, after the same normalization."""
    compiled = _compile(name)
    path = tmp_path / "ruleset.nft"
    path.write_text(compiled.text)
    script = 'nft -f "$1" && nft list table ip "$2" && echo "%%%" && nft list table ip6 "$2"'
    table = compiled.rules.tables[0].name
    done = subprocess.run(["unshare", "-n", "sh", "-c", script, "sh", str(path), table], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for live, t in zip(done.stdout.split("%%%\n"), compiled.rules.tables, strict=True):
        predicted = normalize(listing(t))
        assert normalize(live) == predicted, "".join(difflib.unified_diff(normalize(live).splitlines(True), predicted.splitlines(True), "kernel", "predicted"))
