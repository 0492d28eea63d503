"""Start-up: a command imports what it needs. `svcctl compile` of a small file loads neither the
agent (asyncio, prometheus_client, the Kubernetes client), nor the fast paths' parsers (big inputs
only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_AT_START = ["asyncio", "prometheus_client", "watchfiles", "svcctl.agent.loop", "svcctl.agent.kube",
                "msgspec", "orjson", "ryml", "svcctl.fastload", "svcctl.fastyaml"]


def imported_by(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(done.stdout.split())


def test_compile_of_a_small_file_imports_little():
    code = (
        "import sys\nfrom svcctl.cli import main\n"
        "sys.argv = ['svcctl', 'compile', 'examples/web.yaml', '--node-name', 'node-1']\n"
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
