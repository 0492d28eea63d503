"""An installed (non-editable) svcctl works: the wheel carries the templates inside the package,
and compile finds them there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_templates_and_compiles_from_them(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("svcctl-*.whl")
    with zipfile.ZipFile(wheel) as z:
        shipped = sorted(n for n in z.namelist() if n.startswith("svcctl/templates/"))
        z.extractall(tmp_path / "site")
    assert shipped == sorted(f"svcctl/templates/{p.relative_to(ROOT / 'templates')}" for p in (ROOT / "templates").rglob("*.j2"))
    # Run from the unpacked wheel only (not the checkout): the packaged templates must be used.
    result = subprocess.run(
        [sys.executable, "-c", "from svcctl.cli import main; main()", "compile", str(ROOT / "examples" / "web.yaml"), "--node-name", "node-1"],
        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "chain svc-" in result.stdout
    for backend in ("nftables", "iptables"):
        import_path = subprocess.run(
            [sys.executable, "-c", f"import svcctl.templating as t; print(t.template_dir({backend!r}))"],
            cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True, check=True,
        ).stdout.strip()
        assert import_path == str(tmp_path / "site" / "svcctl" / "templates" / backend)
