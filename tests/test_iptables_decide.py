"""The iptables apply decision without root: svcctl's part of a table read from iptables-save
output recorded from the real kernel (tests/kernel/iptables-*.json: a node with Docker's and
kube-proxy's rules, with and without svcctl's), updates applied to an in-memory table set
(tests/fake_iptables.py) that refuses what iptables refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_iptables import FakeIptables
from svcctl.iptables.decide import staged, summary, table_update
from svcctl.iptables.frame import HOOKS, PREFIX, TableName
from svcctl.iptables.objects import Family
from svcctl.iptables.render import Planned, render
from svcctl.iptables.state import TableState, listing, parse_save, saved_form, udp_targets
from svcctl.iptables.transport import new_udp_frontends, udp_frontends
from svcctl.nftables.decide import ROUTING_MAPS, udp_frontends as nft_udp_frontends
from svcctl.nftables.frame import NODEPORT_CIDRS
from svcctl.options import build_options
from svcctl.pipeline import compile_rules
from svcctl.sources import read_config, read_manifests

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ROOT / "tests" / "kernel"
BUSY = json.loads((KERNEL / "iptables-busy.json").read_text())
WEB = json.loads((KERNEL / "iptables-web.json").read_text())
FLAVOURS = ("nft", "legacy")
NODE = {"node-name": "node-1", "cluster-cidr": ["10.244.0.0/16"]}


def compiled(path: Path, flags: dict | None = None, config: Path | None = None) -> Planned:  # type: ignore[type-arg]
    options = build_options(flags or {}, read_config(str(config)) if config else None)
    return compile_rules(read_manifests([str(path)]), options, "iptables")[2].rules


WEB_PLAN = compiled(ROOT / "examples" / "web.yaml", NODE)


def golden(name: str) -> Planned:
    case = ROOT / "golden" / name
    (manifest,) = [p for p in (case / "manifest.yaml", case / "manifest.json") if p.exists()]
    return compiled(manifest, config=case / "options.yaml")


class Node:
    """Both families of a fake node; ``apply`` does what svcctl's apply does with them."""

    def __init__(self, saved: dict[str, str]):
        self.kernel = {f: FakeIptables(saved[f.value]) for f in Family}

    def live(self, family: Family) -> dict[TableName, TableState]:
        return parse_save(self.kernel[family].save())

    def updates(self, plan: Planned) -> list:  # type: ignore[type-arg]
        return [table_update(f, t, state, self.live(f)[t]) for (f, t), state in plan.tables.items()]

    def apply(self, plan: Planned) -> list:  # type: ignore[type-arg]
        updates = self.updates(plan)
        for u in updates:
            if u:
                self.kernel[u.family].restore(render([u]))
        return updates

    def foreign(self) -> dict[tuple[Family, str], list[str]]:
        """Every rule that is not svcctl's, per family and table, in order."""
        out = {}
        for f, k in self.kernel.items():
            for name, table in k.tables.items():
                out[(f, name)] = [f"{c} {r}" for c, rules in table.chains.items() if not c.startswith(PREFIX)
                                  for r in rules if PREFIX not in r]
        return out


# ---- reading iptables-save --------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_only_svcctls_chains_and_the_jumps_to_them_are_read(flavour: str) -> None:
    for family in Family:
        for table, state in parse_save(WEB[flavour][family.value]).items():
            assert all(name.startswith(PREFIX) for name in state.chains), state.chains.keys()
            assert [(b, spec.rsplit(" ", 1)[1]) for b, spec in state.jumps] == [(h.builtin, h.chain) for h in HOOKS[table]]
    nat = parse_save(BUSY[flavour]["iptables"])[TableName.NAT]
    assert nat == TableState()  # KUBE-SERVICES, DOCKER and their jumps are someone else's


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_what_the_kernel_lists_is_what_svcctl_planned(flavour: str) -> None:
    node = Node(WEB[flavour])
    for (family, table), planned in WEB_PLAN.tables.items():
        assert listing(node.live(family)[table]) == listing(planned)
    assert not any(node.updates(WEB_PLAN)), "an unchanged plan sends nothing"


def test_saved_form_of_probabilities() -> None:
    # iptables keeps the probability as a 31-bit fraction and prints that (libxt_statistic).
    for written, printed in [("0.5000000000", "0.50000000000"), ("0.3333333333", "0.33333333349"), ("0.2000000000", "0.20000000019"),
                             ("0.1000000000", "0.10000000009"), ("0.0100000000", "0.00999999978"), ("0.0010000000", "0.00100000016")]:
        line = f"-A X -m statistic --mode random --probability {written} -j Y"
        assert saved_form(line) == f"-A X -m statistic --mode random --probability {printed} -j Y"
        assert saved_form(saved_form(line)) == saved_form(line)


# ---- applying -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_first_apply_on_a_busy_node_leaves_other_tools_alone(flavour: str) -> None:
    node = Node(BUSY[flavour])
    before = node.foreign()
    updates = node.apply(WEB_PLAN)
    assert summary(updates, True) == "created svcctl's chains in ip and ip6"
    assert node.foreign() == before
    for family in Family:
        for name, table in node.kernel[family].tables.items():
            for builtin in table.policies:
                ours = [h for h in HOOKS[TableName(name)] if h.builtin == builtin]
                # svcctl's jumps on top, in their order, each once; the others after, in theirs.
                assert [r.rsplit(" ", 1)[1] for r in table.chains[builtin][: len(ours)]] == [h.chain for h in ours]
    assert not any(node.updates(WEB_PLAN))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_golden_case_in_turn(flavour: str) -> None:
    """One node re-applied with every golden case: each apply leaves exactly the planned rules,
    the next sends nothing, and other tools' rules never change."""
    node = Node(WEB[flavour])
    before = node.foreign()
    for name in sorted(p.name for p in (ROOT / "golden").iterdir() if p.is_dir()):
        plan = golden(name)
        node.apply(plan)
        for (family, table), planned in plan.tables.items():
            assert listing(node.live(family)[table]) == listing(planned), name
        assert not any(node.updates(plan)), name
        assert node.foreign() == before, name


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_one_endpoint_changed_rewrites_its_chains_only(flavour: str) -> None:
    node = Node(WEB[flavour])
    other = compiled(ROOT / "examples" / "web.yaml", {**NODE, "node-name": "node-2"})  # other local endpoints
    updates = node.apply(other)
    nat = next(u for u in updates if u.family is Family.IPV4 and u.table is TableName.NAT)
    assert nat.declare == ("SVCCTL-SEP-S4XK6Y57P57L3UK6", "SVCCTL-SEP-BAR6JCNCSIZSIDDO", "SVCCTL-SVC-KHN6ECMTVM4XDEFO", *nat.delete_chains)
    assert set(nat.delete_chains) == {"SVCCTL-SEP-FTYIGDHSVOWYUDAY", "SVCCTL-SEP-H5ZFMHGVB7JBNXZR"}
    assert not (nat.insert_jumps or nat.delete_jumps)
    assert [u for u in updates if u] == [nat]
    assert summary(updates, False) == "ip: 3 chain(s) written, 2 removed"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_jumps_are_kept_exactly_once_and_never_moved(flavour: str) -> None:
    node = Node(WEB[flavour])
    nat = node.kernel[Family.IPV4].tables["nat"]
    ours = nat.chains["PREROUTING"][0]
    # Someone inserts a rule above svcctl's jump, and duplicates svcctl's jump at the bottom.
    nat.chains["PREROUTING"].insert(0, "-j DOCKER")
    nat.chains["PREROUTING"].append(ours)
    # And a jump of an older svcctl into one of its chains, with another comment.
    nat.chains["OUTPUT"].append('-m comment --comment "old svcctl" -j SVCCTL-SERVICES')
    updates = node.apply(WEB_PLAN)
    u = next(u for u in updates if u.family is Family.IPV4 and u.table is TableName.NAT)
    assert u.delete_jumps == (("PREROUTING", ours), ("OUTPUT", '-m comment --comment "old svcctl" -j SVCCTL-SERVICES'))
    assert not u.declare and not u.insert_jumps
    assert nat is not node.kernel[Family.IPV4].tables["nat"]
    prerouting = node.kernel[Family.IPV4].tables["nat"].chains["PREROUTING"]
    assert prerouting.count(ours) == 1 and prerouting[0] == "-j DOCKER"  # -D removed the first copy
    assert not any(node.updates(WEB_PLAN))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_missing_jump_is_put_back_and_a_chain_changed_by_hand_rewritten(flavour: str) -> None:
    node = Node(WEB[flavour])
    table = node.kernel[Family.IPV6].tables["filter"]
    table.chains["FORWARD"] = [r for r in table.chains["FORWARD"] if "SVCCTL-SERVICES" not in r]
    table.chains["SVCCTL-SERVICES"].insert(0, "-j ACCEPT")
    updates = node.apply(WEB_PLAN)
    u = next(u for u in updates if u)
    assert (u.family, u.table, u.declare, u.delete_chains) == (Family.IPV6, TableName.FILTER, ("SVCCTL-SERVICES",), ())
    assert u.insert_jumps == (("FORWARD", '-m comment --comment "svcctl service portals" -m conntrack --ctstate NEW -j SVCCTL-SERVICES'),)
    assert summary(updates, False) == "ip6: 1 chain(s) written, 0 removed, 1 jump(s) inserted"
    assert not any(node.updates(WEB_PLAN))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_undo_puts_back_what_was_there(flavour: str) -> None:
    """A refused apply undoes the tables it committed before: the same decision, with the state
    read before as the plan."""
    node = Node(WEB[flavour])
    before = {f: node.live(f) for f in Family}
    saved = {f: node.kernel[f].save() for f in Family}
    node.apply(golden("large-mixed"))
    for family in Family:
        for table in TableName:
            back = table_update(family, table, before[family][table], node.live(family)[table])
            if back:
                node.kernel[family].restore(render([back]))
    for family in Family:
        assert {t: listing(s) for t, s in node.live(family).items()} == {t: listing(s) for t, s in parse_save(saved[family]).items()}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_delete_removes_svcctls_chains_and_jumps_only(flavour: str) -> None:
    node = Node(WEB[flavour])
    before = node.foreign()
    for family in Family:
        for table, state in node.live(family).items():
            node.kernel[family].restore(render([table_update(family, table, TableState(), state)]))
    assert node.foreign() == before
    assert all(not c.startswith(PREFIX) for k in node.kernel.values() for t in k.tables.values() for c in t.chains)
    assert {f: node.kernel[f].save() for f in Family} == {f: Node(BUSY[flavour]).kernel[f].save() for f in Family}


def test_udp_endpoints_are_read_from_the_dnat_rules() -> None:
    plan = golden("protocols")
    udp = {e for (f, t), s in plan.tables.items() if t is TableName.NAT for e in udp_targets(s)}
    assert udp == plan.udp_endpoints and udp


UDP_CASES = [(case, None) for case in ("protocols", "nodeport", "external-ips", "dual-stack", "loadbalancer", "no-endpoints", "large-mixed")]
UDP_CASES.append(("protocols", {"nodeport-addresses": ["192.168.50.0/24", "fd00:50::/64"]}))


@pytest.mark.parametrize("case, flags", UDP_CASES)
def test_udp_frontends_read_from_the_dispatch_rules_are_the_nftables_maps_udp_keys(case: str, flags: dict | None) -> None:  # type: ignore[type-arg]
    """What the conntrack cleanup compares (live against planned) is what the nftables back end
    compares for the same plan: every UDP address and NodePort with endpoints, and the ranges
    of --nodeport-addresses a NodePort answers in."""
    case_dir = ROOT / "golden" / case
    (manifest,) = [p for p in (case_dir / "manifest.yaml", case_dir / "manifest.json") if p.exists()]
    options = build_options(flags or {}, read_config(str(case_dir / "options.yaml")))
    _, _, iptables = compile_rules(read_manifests([str(manifest)]), options, "iptables")
    found = {fr for (f, t), s in iptables.rules.tables.items() if t is TableName.NAT for fr in udp_frontends(f.version, s)}
    want = set()
    for t in compile_rules(read_manifests([str(manifest)]), options)[2].rules.tables:
        within = tuple(el.key[0] for s in t.static_sets if s.name == NODEPORT_CIDRS.name for el in s.elements)
        for s in (s for s in t.static_sets if s.name in ROUTING_MAPS):
            want |= nft_udp_frontends(t.family.version, s.name, (el.key for el in s.elements), within)
    assert found == want
    if case in ("protocols", "large-mixed"):  # UDP ClusterIPs (both), a UDP NodePort (protocols)
        assert found
    if flags:
        assert {fr.within for fr in found if not fr.address} == {("192.168.50.0/24",)}


def test_new_udp_frontends_are_those_the_live_dispatch_did_not_dnat() -> None:
    plan = golden("protocols")
    every = {fr for (f, t), s in plan.tables.items() if t is TableName.NAT for fr in udp_frontends(f.version, s)}
    assert every and new_udp_frontends(plan, plan.empty()) == every  # nothing of svcctl's yet
    assert new_udp_frontends(plan, dict(plan.tables)) == set()  # all live already
    unhooked = {key: TableState(s.chains, ()) if key[1] is TableName.NAT else s for key, s in plan.tables.items()}
    assert new_udp_frontends(plan, unhooked) == every  # the jumps deleted by hand: the rules DNATed nothing


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_staged_creation_switches_only_with_the_last_input(flavour: str) -> None:
    """iptables-nft gets new chains a few at a time (decide.staged): every input is accepted on
    its own (a rule's target exists by then), and nothing reaches the new chains until the last
    input, which also holds the jumps and the chains rewritten."""
    node = Node(BUSY[flavour])
    plan = golden("large-mixed")
    for (family, table), state in plan.tables.items():
        update = table_update(family, table, state, node.live(family)[table])
        parts = staged(update, 3)
        assert len(parts) == -(-len(update.created) // 3) + 1
        for part in parts[:-1]:
            assert not (part.insert_jumps or part.delete_jumps or part.delete_chains) and set(part.declare) == part.created
            node.kernel[family].restore(render([part]))
            assert node.live(family)[table].jumps == ()  # the busy node had none of svcctl's
        node.kernel[family].restore(render([parts[-1]]))
        assert listing(node.live(family)[table]) == listing(state)
    assert staged(update, None) == [update] and staged(update, 10_000) == [update]
    # And deleted again a few at a time: the chains that refer to others go first.
    before = node.foreign()
    for family in Family:
        for table, state in node.live(family).items():
            for part in staged(table_update(family, table, TableState(), state), 3):
                node.kernel[family].restore(render([part]))
    assert node.foreign() == before and all(s == TableState() for f in Family for s in node.live(f).values())
