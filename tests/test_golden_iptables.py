"""Golden rulesets of the iptables back end: for every case under golden/ (golden/README.md),
expected.iptables holds exactly what ``svcctl compile --backend iptables`` prints: the
iptables-restore input an apply sends to a node without svcctl's rules, both tables (filter,
nat) of both families. Each case is compiled in-process and compared byte for byte.

As root, each is also given to the kernel in a throwaway network namespace, with iptables-nft
and with iptables-legacy: checked with ``iptables-restore --test``, loaded for real, read back
with iptables-save, which must list exactly the rules svcctl planned (the form an apply
compares), so that the apply decision then has nothing to send.

After an intended change, regenerate, then review the diff and run again:

    SVCCTL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_iptables.py   # writes, then fails
    git diff golden/
"""

from __future__ import annotations

import os
import shutil

import pytest

import test_golden as nftables_goldens
from golden_check import check
from svcctl.backends import Compiled
from svcctl.iptables.decide import table_update
from svcctl.iptables.objects import Family
from svcctl.iptables.state import listing, parse_save
from svcctl.iptables.xtables import Xtables
from svcctl.kernel import in_throwaway_netns
from svcctl.options import IptablesMode

GOLDEN, CASES = nftables_goldens.GOLDEN, nftables_goldens.CASES
FLAVOURS = (IptablesMode.NFT, IptablesMode.LEGACY)


def _compile(name: str) -> Compiled:
    return nftables_goldens._compile(name, "iptables")


def by_family(text: str) -> dict[Family, str]:
    """The compile output cut where each family's part starts (``# --- iptables: ...``)."""
    parts: dict[Family, str] = {}
    current = None
    for line in text.splitlines(keepends=True):
        if line.startswith("# --- "):
            current = Family(line[len("# --- ") :].split(":", 1)[0])
            parts[current] = ""
        elif current is not None:
            parts[current] += line
    return parts


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    check(GOLDEN / name / "expected.iptables", _compile(name).text, "svcctl compile --backend iptables")


def test_both_families_and_tables_in_every_case() -> None:
    for name in CASES:
        parts = by_family(_compile(name).text)
        assert list(parts) == [Family.IPV4, Family.IPV6], name
        for text in parts.values():
            assert [line for line in text.splitlines() if line.startswith("*")] == ["*filter", "*nat"], name


# ---- the kernel takes every compiled ruleset, and lists it as planned -----------------------


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "loading rules needs root (a throwaway network namespace)"
    missing = [f"{f.value}-{m.value}-{a}" for f in Family for m in FLAVOURS for a in ("save", "restore")
               if shutil.which(f"{f.value}-{m.value}-{a}") is None]
    return f"not installed: {', '.join(missing)}" if missing else None


SKIP = _skip_reason()


@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
@pytest.mark.parametrize("mode", FLAVOURS, ids=lambda m: f"iptables-{m.value}")
@pytest.mark.parametrize("name", CASES)
def test_kernel_loads_and_lists_the_ruleset(name: str, mode: IptablesMode) -> None:
    compiled = _compile(name)
    xt = Xtables(mode)

    def load_and_save() -> dict[Family, str]:
        saved = {}
        for family, text in by_family(compiled.text).items():
            xt.restore(family, text, test=True)
            xt.restore(family, text)
            saved[family] = xt.save(family)
        return saved

    saved = in_throwaway_netns(load_and_save)
    for (family, table), planned in compiled.rules.tables.items():
        live = parse_save(saved[family])[table]
        assert listing(live) == listing(planned), f"{family.value} {table.value}"
        assert not table_update(family, table, planned, live), f"{family.value} {table.value}: a re-apply would send something"
