"""The apply decision without root: svcctl.nftables.decide and live against a fake kernel
(tests/fake_kernel.py) fed listings recorded from the real kernel (tests/kernel/record.py).
Every transaction decided here is applied to the fake, which refuses what the kernel refuses
in the ways that matter (a chain deleted while referenced, an element deleted twice, a table
created twice), and the next decision must find nothing left to do."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fake_kernel import RECORDINGS, FakeKernel
from svcctl.conntrack import UdpFrontend
from svcctl.kernel import KernelError
from svcctl.load import Inputs, Source
from svcctl.nftables.decide import transaction
from svcctl.nftables.layout import layout
from svcctl.nftables.live import read_live
from svcctl.nftables.objects import Ruleset
from svcctl.nftables.refusal import describe, NftRefused
from svcctl.nftables.render import frame_name, render
from svcctl.nftables import transaction as tx
from svcctl.options import Options, build_options
from svcctl.pipeline import compile_rules, read_services
from svcctl.plan import plan
from svcctl.sources import read_manifests

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "web.yaml")
OPTIONS = build_options({"node-name": "node-1", "cluster-cidr": ["10.244.0.0/16"]})


def example(options: Options = OPTIONS) -> Ruleset:
    return compile_rules(read_manifests([EXAMPLE]), options)[2].rules


def frames(ruleset: Ruleset) -> dict[str, str]:
    return {t.scope: frame_name(t) for t in ruleset.tables}


def decide(kernel: FakeKernel, ruleset: Ruleset) -> tx.Transaction:
    return transaction(ruleset, read_live(kernel, ruleset, frames(ruleset)), frames(ruleset))


def converge(kernel: FakeKernel, ruleset: Ruleset) -> tx.Transaction:
    """Decide, apply to the fake, and check that nothing is left to do."""
    decided = decide(kernel, ruleset)
    kernel.apply(decided)
    assert not decide(kernel, ruleset), "a second apply would still change something"
    return decided


def kinds(decided: tx.Transaction) -> list[str]:
    return [op.op for op in decided.operations]


def test_the_recordings_are_of_this_frame() -> None:
    # After a change to the frame, re-record: .venv/bin/python tests/kernel/record.py (root).
    kernel = FakeKernel("web.json")
    live = {name for (family, table), t in kernel.tables.items() for name in t.sets if name.startswith("frame-")}
    assert live == set(frames(example()).values()), "tests/kernel/*.json are of another frame: re-record them"


def fewer_web_endpoints() -> Ruleset:
    """The example with one endpoint less for shop/web: new chains for its port."""
    inventory, services = read_services(read_manifests([EXAMPLE]), OPTIONS)
    web = next(s for s in services if s.name == "web")
    port = web.ports[0]
    fewer = dataclasses.replace(web, ports=(dataclasses.replace(port, backends=port.backends[:-1]),))
    return layout(plan([fewer if s is web else s for s in services], OPTIONS), OPTIONS.table)


def test_an_empty_kernel_gets_created_tables() -> None:
    decided = converge(FakeKernel(), example())
    assert decided.kind == "full"
    assert kinds(decided) == ["create_table", "create_table", "load_table", "load_table"]
    assert decided.summary == "created ip svcctl and ip6 svcctl"


def test_the_recorded_live_state_needs_nothing() -> None:
    """What the real kernel lists after `svcctl apply` reads back as exactly the plan: set keys
    (concatenations, prefixes, ports as numbers), verdicts, chain and set names."""
    decided = decide(FakeKernel("web.json"), example())
    assert (decided.kind, decided.operations, decided.summary) == ("unchanged", (), "no changes")


def test_one_endpoint_changed_sends_one_chain_and_its_elements() -> None:
    decided = converge(FakeKernel("web.json"), fewer_web_endpoints())
    assert decided.kind == "update"
    assert kinds(decided) == ["add_objects", "delete_elements", "delete_elements", "add_elements", "add_elements", "delete_chain", "delete_chain"]
    added = decided.operations[0]
    assert [c.name.split("-", 2)[2] for c in (*added.endpoint_chains, *added.external_chains)] == ["shop/web/tcp/http"] * 2
    # the ext- chain points at the svc- chain: it goes first, then the old svc- chain
    assert [op.name.split("-")[0] for op in decided.operations if op.op == "delete_chain"] == ["ext", "svc"]
    assert decided.summary == "ip: 2 chain(s) added, 2 removed, 4 element change(s)"


def test_an_affinity_set_deleted_by_hand_comes_back_and_the_summary_says_so() -> None:
    kernel = FakeKernel("web.json")
    table = kernel.tables[("ip", "svcctl")]
    gone = next(name for name in table.sets if name.startswith("aff-"))
    del table.sets[gone]
    decided = decide(kernel, example())
    assert kinds(decided) == ["add_objects"] and [s.name for s in decided.operations[0].sets] == [gone]
    assert decided.summary == "ip: 0 chain(s) added, 0 removed, 0 element change(s), affinity sets: 1 added, 0 removed"


def test_a_hook_chain_deleted_by_hand_is_reloaded_in_place() -> None:
    decided = converge(FakeKernel("web-hook-deleted.json"), example())
    assert kinds(decided) == ["load_table", "load_table"]  # no delete table: affinity state stays
    assert decided.summary == "reloaded ip svcctl (a hook chain was missing)"


def test_new_chains_are_committed_before_the_elements_that_point_at_them() -> None:
    """The fake refuses a map element pointing at a chain created in the same commit (a packet
    straddling the commit would run that chain empty): the new chains go in a commit of their
    own, for an update and for a reload in place alike."""
    for recording, stages in (("web.json", 2), ("web-hook-deleted.json", 2)):
        kernel = FakeKernel(recording)
        decided = converge(kernel, fewer_web_endpoints())
        commits = tx.stages(decided.operations)
        assert len(commits) == stages and {op.op for op in commits[0]} == {"add_objects"}, recording
        assert "add_objects" not in {op.op for op in commits[1]}
    unstaged = decide(FakeKernel("web.json"), fewer_web_endpoints()).operations
    with pytest.raises(KernelError, match=r"map service-ips points at chain svc-\w+-shop/web/tcp/http created in the same commit"):
        FakeKernel("web.json").commit(unstaged)


def test_source_ranges_that_lose_their_check_are_deleted_in_a_last_commit() -> None:
    """The check looks up firewall-ips, then firewall-allow: a packet straddling one commit that
    removed both could find its port checked and its range gone. The ranges go a commit later."""
    from svcctl.load import Inputs, Source

    lb = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: LoadBalancer, clusterIP: 10.96.0.20, "
        "ports: [{port: 80, nodePort: 30080}]RANGES}\nstatus: {loadBalancer: {ingress: [{ip: 203.0.113.7}]}}\n---\n"
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: lb-1, labels: {kubernetes.io/service-name: lb}}\n"
        "addressType: IPv4\nports: [{port: 80}]\nendpoints: [{addresses: [10.244.1.5]}]\n"
    )

    def rules(ranges: str) -> Ruleset:
        return compile_rules(Inputs([Source("m.yaml", lb.replace("RANGES", ranges), False)]), OPTIONS)[2].rules

    kernel = FakeKernel()
    converge(kernel, rules(", loadBalancerSourceRanges: [198.51.100.0/24]"))
    narrowed = converge(kernel, rules(", loadBalancerSourceRanges: [192.0.2.0/24]"))
    assert len(tx.stages(narrowed.operations)) == 1  # the check stays: one commit
    removed = converge(kernel, rules(""))
    commits = tx.stages(removed.operations)
    assert [[(op.op, op.set.name) for op in c if op.op == "delete_elements"] for c in commits] == [
        [("delete_elements", "firewall-ips")], [("delete_elements", "firewall-allow")]
    ]


def test_another_frame_is_replaced() -> None:
    masquerade_all = dataclasses.replace(OPTIONS, masquerade_all=True)
    decided = converge(FakeKernel("web.json"), example(masquerade_all))
    assert kinds(decided) == ["delete_table", "delete_table", "load_table", "load_table"]
    assert "replaced ip svcctl and ip6 svcctl" in decided.summary


def test_tables_svcctl_did_not_make_are_refused() -> None:
    kernel = FakeKernel("foreign.json")
    with pytest.raises(KernelError, match="table ip svcctl exists and was not made by svcctl"):
        decide(kernel, example())


def test_a_foreign_table_svcctl_cannot_see_is_refused_by_create_table() -> None:
    """A table holding only a counter has no chain or set for svcctl's listings: it looks absent,
    and the `create table` of the transaction is what the kernel refuses."""
    kernel = FakeKernel("foreign.json")
    del kernel.tables[("ip", "svcctl")]
    decided = decide(kernel, example())
    assert kinds(decided)[:2] == ["create_table", "create_table"]
    with pytest.raises(KernelError, match="create table ip6 svcctl: File exists"):
        kernel.apply(decided)
    assert ("ip", "svcctl") not in kernel.tables  # all or nothing


def rules(text: str) -> Ruleset:
    return compile_rules(Inputs([Source("m.yaml", text, False)]), OPTIONS)[2].rules


def udp_service(name: str, cluster_ip: str, endpoints: list[str], node_port: int | None = None, protocol: str = "UDP") -> str:
    """A Service with one port 53 and its EndpointSlice; with ``node_port``, of type NodePort."""
    kind = "type: NodePort, " if node_port else ""
    port = f"{{port: 53, protocol: {protocol}{f', nodePort: {node_port}' if node_port else ''}}}"
    addresses = ", ".join(f"{{addresses: [{ip}]}}" for ip in endpoints)
    return (
        f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{{kind}clusterIP: {cluster_ip}, ports: [{port}]}}\n"
        f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-1, labels: {{kubernetes.io/service-name: {name}}}}}\n"
        f"addressType: IPv4\nports: [{{port: 53, protocol: {protocol}}}]\nendpoints: [{addresses}]\n"
    )


def test_removed_udp_endpoints_are_handed_to_the_conntrack_cleanup() -> None:
    kernel = FakeKernel()
    converge(kernel, rules(udp_service("dns", "10.96.0.10", ["10.244.1.5", "10.244.2.5"])))
    decided = converge(kernel, rules(udp_service("dns", "10.96.0.10", ["10.244.1.5"])))
    assert decided.removed_udp_endpoints == (("10.244.2.5", 53),)


def test_udp_ports_the_rules_start_to_dnat_are_handed_to_the_conntrack_cleanup() -> None:
    """Flows to them so far were not DNATed (svcctl.conntrack): every UDP port with endpoints
    of created tables, then only those the live maps did not lead to a DNAT."""
    kernel = FakeKernel()
    dns = udp_service("dns", "10.96.0.10", ["10.244.1.5"])
    assert converge(kernel, rules(dns)).new_udp_frontends == (UdpFrontend(4, "10.96.0.10", 53),)
    more = dns + udp_service("np", "10.96.0.11", ["10.244.1.6"], node_port=30053) + udp_service("web", "10.96.0.12", ["10.244.1.7"], protocol="TCP")
    assert converge(kernel, rules(more)).new_udp_frontends == (UdpFrontend(4, "", 30053), UdpFrontend(4, "10.96.0.11", 53))
    other_endpoint = more.replace("10.244.1.5", "10.244.2.5")
    assert converge(kernel, rules(other_endpoint)).new_udp_frontends == ()  # still DNATed, elsewhere
    no_endpoints = udp_service("dns", "10.96.0.10", [])
    assert converge(kernel, rules(no_endpoints)).new_udp_frontends == ()  # rejected now
    assert converge(kernel, rules(dns)).new_udp_frontends == (UdpFrontend(4, "10.96.0.10", 53),)  # 0 -> 1 endpoint
    assert decide(FakeKernel("web.json"), example()).new_udp_frontends == ()  # the recorded keys read back
    del kernel.tables[("ip", "svcctl")].chains["nat-prerouting"]  # by hand: nothing was DNATed since
    assert decide(kernel, rules(dns)).new_udp_frontends == (UdpFrontend(4, "10.96.0.10", 53),)


def test_an_update_renders_in_dependency_order() -> None:
    kernel = FakeKernel("web.json")
    ruleset = example(dataclasses.replace(OPTIONS, node_name="node-2"))  # other local endpoints
    text = render(decide(kernel, ruleset).operations)
    lines = [line for line in text.splitlines() if line and not line.startswith(("\t", "}"))]
    order = [line.split(" ")[0] + " " + line.split(" ")[1] for line in lines]
    assert order == sorted(order, key=["table ip", "delete element", "add element", "delete chain", "delete set"].index)


def test_the_refusal_names_the_line_and_the_service() -> None:
    recorded = json.loads((RECORDINGS / "refused.json").read_text())
    message = describe(NftRefused(recorded["error"], recorded["script"]))
    assert message.startswith("the kernel refused the ruleset, nothing was changed: Error: No such file or directory at line ")
    assert "@aff-AAAAAAAA-shop/web/tcp/http/missing" in message  # the refused rule, quoted
    assert message.endswith("(Service shop/web port http/tcp)")


def test_a_refusal_without_a_position_is_still_one_line() -> None:
    assert describe(NftRefused("Error: Could not process rule: No buffer space available", "x")) == (
        "the kernel refused the ruleset, nothing was changed: Error: Could not process rule: No buffer space available"
    )
