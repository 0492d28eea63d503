"""Golden zone files: a golden case folder (golden/README.md) that holds ``expected.zone`` (the
forward zone) or ``expected.<zone>.zone`` (that reverse zone, e.g. expected.10.in-addr.arpa.zone)
has the exact ``svcctl dns`` output for its manifest and options, and optionally ``dns.yaml``
with the dns command's own settings (cluster-domain, ttl, serial). Each is compared byte for byte;
with kzonecheck (Knot DNS) installed, each is also checked the way knotd checks a zone it loads.

Regenerate after an intended change, then review the diff:

    SVCCTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_dns.py

(An empty expected file added to a case is filled in the same way.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from golden_check import check
from svcctl.dns import dns_settings, dns_text
from svcctl.options import build_options
from svcctl.pipeline import read_services
from svcctl.sources import read_config, read_manifests

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
FORWARD = "expected.zone"


def _zone_of(expected: Path) -> str | None:
    """expected.zone -> None (the forward zone); expected.10.in-addr.arpa.zone -> 10.in-addr.arpa."""
    return None if expected.name == FORWARD else expected.name.removeprefix("expected.").removesuffix(".zone")


EXPECTED = sorted(
    p.relative_to(GOLDEN).as_posix()
    for case in GOLDEN.iterdir() if case.is_dir()
    for p in case.glob("expected*.zone")
)


def _dns(case: Path, zone: str | None) -> str:
    manifest = next(p for p in (case / "manifest.yaml", case / "manifest.json") if p.exists())
    options = build_options({}, read_config(str(case / "options.yaml")))
    settings_file = case / "dns.yaml"
    given = yaml.safe_load(settings_file.read_text()) if settings_file.exists() else {}
    settings = dns_settings({**given, "zone": zone}, str(settings_file))
    inventory, services = read_services(read_manifests([str(manifest)]), options)
    text, _ = dns_text(inventory, services, settings, as_json=False)
    return text


def test_there_are_dns_cases() -> None:
    # The docs' ExternalName example, and a headless case with every kind of endpoint.
    for name in ("docs-externalname/expected.zone", "dns-headless/expected.zone", "dns-headless/expected.10.in-addr.arpa.zone"):
        assert name in EXPECTED, EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_golden_zone(name: str) -> None:
    expected_file = GOLDEN / name
    check(expected_file, _dns(expected_file.parent, _zone_of(expected_file)), "svcctl dns")


KZONECHECK = shutil.which("kzonecheck") or ("/usr/bin/kzonecheck" if os.path.exists("/usr/bin/kzonecheck") else None)


@pytest.mark.skipif(KZONECHECK is None, reason="kzonecheck (Debian package knot-dnssecutils) is not installed")
@pytest.mark.parametrize("name", EXPECTED)
def test_knot_accepts_golden_zone(name: str) -> None:
    """knotd's semantic checks, run on the file: glue for in-zone NS names, CNAME next to other
    data, names and labels within limits, well-formed records."""
    expected_file = GOLDEN / name
    zone = _zone_of(expected_file) or expected_file.read_text().split("\n", 2)[1].split("\t", 1)[0]
    done = subprocess.run([KZONECHECK, "-o", zone, str(expected_file)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kzonecheck refused golden/{name}:\n{done.stdout}{done.stderr}"
