"""The diff normalizer (svcctl.nftables.listing) on a listing recorded from the real kernel
(tests/kernel/web.txt): one canonical text whatever the kernel's object and element order."""

from __future__ import annotations

import random
from pathlib import Path

from svcctl.nftables.listing import normalize, unified_diff

WEB = (Path(__file__).resolve().parent / "kernel" / "web.txt").read_text()


def blocks(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("\t") and line.endswith("{") and not line.startswith("\t\t")]


def test_objects_sorted_sets_before_chains() -> None:
    names = blocks(normalize(WEB))
    sets = [n for n in names if n.startswith(("set ", "map "))]
    chains = [n for n in names if n.startswith("chain ")]
    assert names == sets + chains
    assert sets == sorted(sets, key=lambda n: n.split()[1]) and chains == sorted(chains)
    assert len(names) == len(blocks(WEB))  # nothing lost


def test_elements_one_per_line_sorted() -> None:
    text = normalize(WEB)
    hairpin = text[text.index("set hairpin {"):]
    hairpin = hairpin[: hairpin.index("\n\t}")]
    assert hairpin.endswith("\t\telements = {\n\t\t\t10.244.1.2 . 10.244.1.2\n\t\t\t10.244.1.3 . 10.244.1.3\n\t\t\t10.244.1.5 . 10.244.1.5\n\t\t}")


def test_dynamic_set_elements_are_state_not_configuration() -> None:
    # A client pinned by session affinity is an element of an aff- set: never a difference.
    pinned = WEB.replace(
        "\t\tflags dynamic,timeout\n",
        "\t\tflags dynamic,timeout\n\t\telements = { 192.0.2.7 expires 9m59s }\n",
    )
    assert normalize(pinned) == normalize(WEB)


def test_object_and_element_order_do_not_matter() -> None:
    head, *parts = WEB.split("\n\n")
    shuffled = parts[:-1]
    random.Random(1).shuffle(shuffled)
    reordered = "\n\n".join([head, *shuffled, parts[-1]])
    reordered = reordered.replace(
        "10.244.1.2 . 10.244.1.2,\n\t\t\t     10.244.1.3 . 10.244.1.3,", "10.244.1.3 . 10.244.1.3,\n\t\t\t     10.244.1.2 . 10.244.1.2,"
    )
    assert reordered != WEB
    assert normalize(reordered) == normalize(WEB)
    assert unified_diff(normalize(WEB), normalize(reordered)) == ""


def test_a_changed_rule_is_one_line_of_diff() -> None:
    changed = WEB.replace("numgen random mod 3 0 dnat to 10.244.1.2:8080", "numgen random mod 3 0 dnat to 10.244.1.9:8080")
    diff = unified_diff(normalize(WEB), normalize(changed))
    assert [line for line in diff.splitlines() if line.startswith(("+\t", "-\t"))] == [
        "-\t\tmeta l4proto tcp numgen random mod 3 0 dnat to 10.244.1.2:8080",
        "+\t\tmeta l4proto tcp numgen random mod 3 0 dnat to 10.244.1.9:8080",
    ]
