"""The back end every real-traffic test runs with: each test once per back end (BACKENDS), the
tests grouped by back end so that one lab serves them all."""

from __future__ import annotations

import shutil

import pytest

from scenarios import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    name = request.param
    if name.startswith("iptables-"):
        flavour = name.removeprefix("iptables-")
        missing = [p for f in ("iptables", "ip6tables") for a in ("save", "restore") if not shutil.which(p := f"{f}-{flavour}-{a}")]
        if missing:
            pytest.skip(f"not installed: {', '.join(missing)}")
    return name
