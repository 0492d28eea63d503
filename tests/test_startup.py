"""Start-up: a command imports what it needs. `svcctl compile` of a small file loads neither the
agent (asyncio, prometheus_client, the Kubernetes client), nor the fast paths' parsers (big inputs
only), nor a back end's kernel side (apply, diff, delete), nor what only `dns` and `trace` use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_AT_START = ["asyncio", "prometheus_client", "watchfiles", "svcctl.agent.loop", "svcctl.agent.kube",
                "msgspec", "orjson", "ryml", "svcctl.fastload", "svcctl.fastyaml",
                "svcctl.nftables.transport", "svcctl.iptables.transport", "svcctl.conntrack",
                "svcctl.dns.records", "svcctl.dns.zone", "svcctl.trace"]


def imported_by(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(done.stdout.split())


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_compile_of_a_small_file_imports_little(backend: str):
    code = (
        "import sys\nfrom svcctl.cli import main\n"
        f"sys.argv = ['svcctl', 'compile', 'examples/web.yaml', '--node-name', 'node-1', '--backend', {backend!r}]\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main()\n    except SystemExit:\n        pass"
    )
    loaded = imported_by(code)
    assert "svcctl.model" in loaded  # it did run
    assert not loaded & set(NOT_AT_START), loaded & set(NOT_AT_START)


def test_a_big_file_takes_the_fast_path(tmp_path: Path):
    big = tmp_path / "big.json"
    big.write_text('{"apiVersion": "v1", "kind": "List", "items": [], "x": "' + "a" * (1 << 20) + '"}')
    loaded = imported_by(f"from svcctl.sources import load\nassert load([{str(big)!r}]) == ([], [])")
    assert {"svcctl.fastload", "msgspec"} <= loaded and "svcctl.fastyaml" not in loaded


def run_entry(*args: str, function: str = "entry") -> subprocess.CompletedProcess[str]:
    """The console script's entry point, which exits with os._exit once its output is flushed
    (standard output buffered, as users have it: PYTHONUNBUFFERED would hide a missing flush)."""
    code = f"import sys; from svcctl.cli import {function}; sys.argv[1:] = sys.argv[2:]; {function}()"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", code, "-", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def test_the_console_script_flushes_everything_before_its_quick_exit():
    # show: a short output, which stays in the buffer until something flushes it
    shown = run_entry("show", "examples/web.yaml", "--node-name", "node-1")
    assert shown.returncode == 0, shown.stderr
    by_main = run_entry("show", "examples/web.yaml", "--node-name", "node-1", function="main")
    assert shown.stdout == by_main.stdout and "shop/api" in shown.stdout


def test_the_console_script_exits_with_the_status_of_the_command(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\nspec: {ports: [{port: 80}]}\n")
    invalid = run_entry("validate", str(bad))
    assert invalid.returncode == 2
    assert "Service default/Bad_Name: metadata.name: Invalid value" in invalid.stderr
    usage = run_entry("compile", "--no-such-option")
    assert usage.returncode == 2 and "No such option: --no-such-option" in usage.stderr
    assert run_entry("--version").returncode == 0
