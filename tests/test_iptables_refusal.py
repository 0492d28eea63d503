"""What svcctl says when iptables-restore refuses an input, from messages recorded from both
flavours (tests/kernel/iptables-refused.json): iptables' reason, the line it points at, and the
Service port that line's chain was made for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from svcctl.iptables.refusal import describe

RECORDED = json.loads((Path(__file__).resolve().parent / "kernel" / "iptables-refused.json").read_text())
OWNERS = {"SVCCTL-SVC-AAAAAAAAAAAAAAAA": "shop/web/tcp/http", "SVCCTL-SEP-BBBBBBBBBBBBBBBB": "shop/web/tcp/http"}
EXPECTED = {
    ("legacy", "missing-chain"): "Couldn't load target `SVCCTL-SEP-BBBBBBBBBBBBBBBB':No such file or directory at line 3 of the iptables nat input: "
                                 "-A SVCCTL-SVC-AAAAAAAAAAAAAAAA -j SVCCTL-SEP-BBBBBBBBBBBBBBBB (Service shop/web port http/tcp)",
    # iptables-nft finds it at commit time and points at COMMIT: the chain it names tells.
    ("nft", "missing-chain"): "Chain 'SVCCTL-SEP-BBBBBBBBBBBBBBBB' does not exist at line 4 of the iptables nat input (Service shop/web port http/tcp)",
    ("legacy", "unknown-match"): "Couldn't load match `bogus':No such file or directory at line 3 of the iptables nat input: "
                                 "-A SVCCTL-SVC-AAAAAAAAAAAAAAAA -m bogus -j RETURN (Service shop/web port http/tcp)",
    ("nft", "unknown-match"): "Couldn't load match `bogus':No such file or directory at line 3 of the iptables nat input: "
                              "-A SVCCTL-SVC-AAAAAAAAAAAAAAAA -m bogus -j RETURN (Service shop/web port http/tcp)",
    # A chain still jumped to: by a rule svcctl did not write (its own go first).
    ("legacy", "chain-in-use"): "iptables-restore gave no reason at line 3 of the iptables nat input: -X SVCCTL-SERVICES; "
                                "a rule svcctl did not write may still jump to SVCCTL-SERVICES: find it with iptables-save",
    ("nft", "chain-in-use"): "CHAIN_DEL failed (Device or resource busy): chain SVCCTL-SERVICES at line 3 of the iptables nat input: "
                             "-X SVCCTL-SERVICES; a rule svcctl did not write may still jump to SVCCTL-SERVICES: find it with iptables-save",
}


@pytest.mark.parametrize("flavour, case", list(EXPECTED))
def test_refusals_name_the_line_and_the_service_port(flavour: str, case: str) -> None:
    recorded = RECORDED[flavour][case]
    message = describe(recorded["error"], recorded["script"], "iptables nat", OWNERS, changed=False)
    assert message == f"iptables refused the rules, nothing was changed: {EXPECTED[(flavour, case)]}"


def test_a_refusal_after_an_earlier_table_that_could_not_be_put_back_says_so() -> None:
    recorded = RECORDED["nft"]["chain-in-use"]
    message = describe(recorded["error"], recorded["script"], "iptables nat", OWNERS, changed=True)
    assert message.startswith("iptables refused the rules, some rules of an earlier table could not be put back, run apply again: ")


def test_the_still_in_use_hint_is_only_for_a_chain_in_use() -> None:
    script = "*nat\n-F SVCCTL-SEP-BBBBBBBBBBBBBBBB\n-X SVCCTL-SEP-BBBBBBBBBBBBBBBB\nCOMMIT\n"
    gone = describe("ip6tables-nft-restore v1.8.9 (nf_tables): \nline 3: CHAIN_DEL failed (No such file or directory): chain SVCCTL-SEP-BBBBBBBBBBBBBBBB",
                    script, "ip6tables nat", OWNERS, changed=False)
    assert "may still jump" not in gone
    busy = describe("ip6tables-nft-restore v1.8.9 (nf_tables): \nline 4: CHAIN_DEL failed (Device or resource busy): chain SVCCTL-SEP-BBBBBBBBBBBBBBBB",
                    script, "ip6tables nat", OWNERS, changed=False)
    assert busy.endswith("; a rule svcctl did not write may still jump to SVCCTL-SEP-BBBBBBBBBBBBBBBB: find it with ip6tables-save")
