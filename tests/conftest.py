"""Shared helpers for the unit and CLI tests (tests/e2e has its own)."""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from svcctl import cli
from svcctl.sources import load
from svcctl.options import Options
from svcctl.problems import InvalidInput
from svcctl.resolve import ResolvedService, resolve
from svcctl.validate import Inventory, NodePortRange, validate


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture
def write(tmp_path: Path):
    """write(text, name="m.yaml") -> path of a file holding the dedented text."""

    def _write(text: str, name: str = "m.yaml") -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
        return str(path)

    return _write


def inventory_of(*paths: str, node_ports: NodePortRange = NodePortRange()) -> Inventory:
    objects, problems = load(list(paths))
    assert problems == [], [p.render() for p in problems]
    return validate(objects, node_ports)


def problems_of(*paths: str, node_ports: NodePortRange = NodePortRange()) -> list[str]:
    """Every problem line, as the CLI prints them (sorted by file and line)."""
    objects, problems = load(list(paths))
    try:
        validate(objects, node_ports)
    except InvalidInput as err:
        problems += err.problems
    return InvalidInput(problems).lines()


def resolved(*paths: str, options: Options | None = None) -> dict[str, ResolvedService]:
    options = options or Options(node_name="node-a")
    return {s.ref: s for s in resolve(inventory_of(*paths), options)}


@pytest.fixture
def netns():
    """A network namespace of its own (``ip netns``, root only), deleted afterwards."""
    name = f"svctest-{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """run_cli("validate", path, stdin=None) -> Run: svcctl's real entry point, in-process."""

    def _run(*args: str, stdin: str | None = None) -> Run:
        monkeypatch.setattr(sys, "argv", ["svcctl", *args])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        captured = capsys.readouterr()
        code = exit_info.value.code
        return Run(code if isinstance(code, int) else (0 if code is None else 1), captured.out, captured.err)

    return _run
