"""An installed (non-editable) svcctl works: the wheel carries the templates inside the package,
and compile finds them there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


def test_pip_install_into_a_plain_venv_gives_a_working_svcctl(tmp_path):
    """What `pip install .` gives a user on any Python 3.11+: a venv without Debian's packages,
    the wheel and its dependencies from PyPI. The commands that need no kernel work; apply says
    in one sentence that the nftables binding is missing (exit 3), without a traceback."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("svcctl-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # pip of this environment installs into the new one: nothing of this venv's packages leaks in.
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )
    if installed.returncode != 0 and "--python" in installed.stderr:  # pip older than 22.3
        pytest.skip("this pip cannot install into another environment")
    assert installed.returncode == 0, installed.stderr[-2000:]
    svcctl = str(venv / "bin" / "svcctl")
    web = str(ROOT / "examples" / "web.yaml")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for args in (["--version"], ["validate", web], ["compile", web, "--node-name", "n1"], ["dns", web], ["trace", web, "--node-name", "n1", "--to", "10.96.0.20:8080"]):
        ran = subprocess.run([svcctl, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert ran.returncode == 0, (args, ran.stderr)
    no_binding = subprocess.run([svcctl, "apply", web, "--node-name", "n1"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert no_binding.returncode == 3
    assert no_binding.stderr.startswith("svcctl: the nftables Python binding is missing: install Debian's python3-nftables")
    assert "Traceback" not in no_binding.stderr and len(no_binding.stderr.splitlines()) == 1
