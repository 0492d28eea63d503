"""``svcctl run`` with the iptables back end (svcctl.iptables.syncer): the incremental path gives
the bytes of a full compile after any sequence of changes, its update commits (decided from
what it committed last, not read from the kernel) leave the kernel holding exactly the plan,
a verify repairs what was changed by hand and a reload rewrites every chain. Both flavours."""

from __future__ import annotations

import json
import os
import random
import shutil

import pytest

from svcctl.agent.planner import Planner
from svcctl.agent.source import Put
from svcctl.agent.state import State
from svcctl.iptables.decide import table_update
from svcctl.iptables.objects import Family
from svcctl.iptables.render import render_ruleset
from svcctl.iptables.syncer import Syncer
from svcctl.iptables.transport import read
from svcctl.iptables.xtables import Xtables
from svcctl.kernel import in_throwaway_netns
from svcctl.options import IptablesMode, build_options
from test_agent_planner import full, pod, random_events, service

OPTIONS = build_options({"node-name": "node-1", "cluster-cidr": ["10.244.0.0/16", "fd00:244::/48"], "backend": "iptables"})


def steps(rng: random.Random, state: State, planner: Planner, syncer: Syncer) -> None:
    """One random change of the manifests, given to the syncer."""
    for (version, name), ports in planner.update(state, state.apply(random_events(rng))).items():
        syncer.update(version, name, ports)


@pytest.mark.parametrize("seed", range(6))
def test_incremental_equals_full_compile(seed: int) -> None:
    rng = random.Random(seed)
    state, planner, syncer = State(), Planner(OPTIONS), Syncer(OPTIONS)
    for step in range(30):
        steps(rng, state, planner, syncer)
        assert render_ruleset(syncer.ruleset()) == full(state, "iptables", OPTIONS), f"step {step}"


needs_kernel = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(f"{f}-{m}-restore") is None for f in ("iptables", "ip6tables") for m in ("nft", "legacy")),
    reason="needs root (a throwaway network namespace) and iptables (both flavours)",
)


@needs_kernel
@pytest.mark.parametrize("mode", [IptablesMode.NFT, IptablesMode.LEGACY])
def test_update_commits_leave_the_kernel_holding_the_plan(mode: IptablesMode) -> None:
    options = build_options({"node-name": "node-1", "cluster-cidr": ["10.244.0.0/16"], "backend": "iptables", "iptables-mode": mode.value})

    def work() -> list[str]:
        rng = random.Random(3)
        state, planner, syncer = State(), Planner(options), Syncer(options)
        failures = []
        for step in range(20):
            steps(rng, state, planner, syncer)
            syncer.commit(verify=step == 0)  # the first one reads the kernel, the rest are updates
            _, live = read(mode)
            plan = syncer.ruleset()
            left = [f"{f.value} {t.value}" for (f, t), s in plan.tables.items() if table_update(f, t, s, live[(f, t)])]
            if left:
                failures.append(f"step {step}: {left} differ")
        return failures

    assert in_throwaway_netns(work) == []


@needs_kernel
def test_verify_repairs_and_reload_rewrites() -> None:
    options = build_options({"node-name": "node-1", "backend": "iptables", "iptables-mode": "legacy"})

    def work() -> tuple[str, str, str, str]:
        rng = random.Random(7)
        state, planner, syncer = State(), Planner(options), Syncer(options)
        svc = service(1, rng) | {"spec": {"clusterIP": "10.96.0.11", "selector": {"app": "a1"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
        objects = [svc, pod(1, rng) | {"metadata": {"name": "p1", "labels": {"app": "a1"}}}]
        for (version, name), plan_ in planner.update(state, state.apply([Put("f.json", json.dumps({"kind": "List", "apiVersion": "v1", "items": objects}), True)])).items():
            syncer.update(version, name, plan_)
        created = syncer.commit().summary
        xt = Xtables(IptablesMode.LEGACY)
        xt.restore(Family.IPV4, "*nat\n:SVCCTL-SERVICES - [0:0]\nCOMMIT\n")  # emptied by hand
        unchanged = syncer.commit().summary  # nothing changed in the manifests: nothing read, nothing sent
        verified = syncer.commit(verify=True).summary
        reloaded = syncer.commit(reload=True).summary
        return created, unchanged, verified, reloaded

    created, unchanged, verified, reloaded = in_throwaway_netns(work)
    assert created == "created svcctl's chains in ip and ip6 (iptables-legacy)"
    assert unchanged == "no changes"
    assert verified == "ip: 1 chain(s) written, 0 removed"
    assert reloaded.startswith("ip: ") and "ip6: " in reloaded


def test_reconfigure_takes_the_new_settings() -> None:
    rng = random.Random(1)
    state, planner, syncer = State(), Planner(OPTIONS), Syncer(OPTIONS)
    for _ in range(5):
        steps(rng, state, planner, syncer)
    wider = build_options({"node-name": "node-1", "cluster-cidr": ["10.244.0.0/16", "fd00:244::/48"], "backend": "iptables",
                           "service-cidr": ["10.100.0.0/16"]})
    syncer.reconfigure(wider)
    assert "-A SVCCTL-CLUSTER-IPS -d 10.100.0.0/16 -j SVCCTL-SERVICE-CIDRS" in render_ruleset(syncer.ruleset())
