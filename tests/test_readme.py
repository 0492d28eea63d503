"""The README's quick tour, run as written (a newcomer's first commands): each command of its
```sh blocks in order, in a throwaway network namespace (apply and delete touch that namespace's
rules only), from a directory where `examples/` is the repository's, with the installed svcctl
first on PATH. Every command must succeed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tour_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## A quick tour"):]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_tour_has_the_commands_a_newcomer_needs() -> None:
    verbs = [c.split()[1] for c in tour_commands()]
    assert verbs == ["validate", "show", "compile", "trace", "dns", "apply", "diff", "apply", "delete"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (a throwaway network namespace)")
def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    script = "set -e\n" + "".join(f"echo '+ {c}' >&2\n{c}\n" for c in tour_commands())
    done = subprocess.run(["unshare", "-n", "sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "valid: 3 Service(s)" in done.stdout and "applied: created ip svcctl and ip6 svcctl" in done.stdout
    assert done.stdout.rstrip().endswith("deleted: table ip svcctl and table ip6 svcctl")
