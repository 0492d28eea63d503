"""Record what the real kernel lists, for the tests that run without root (tests/fake_kernel.py,
tests/test_decide.py, tests/test_listing.py). Run as root after a change to the frame:

    .venv/bin/python tests/kernel/record.py

Each recording is made in a throwaway network namespace with the real svcctl and nft:
- web.json, web.txt: `svcctl apply examples/web.yaml` (node-1, cluster CIDR 10.244.0.0/16):
  `nft -j list ruleset` and `nft list table ip svcctl`;
- web-hook-deleted.json: the same, then the hook chain filter-input deleted by hand;
- foreign.json: tables named svcctl that svcctl did not make (one with a chain, one with only a
  counter);
- refused.json: a transaction nft refuses (a rule using a set that does not exist) and nft's
  error message for it.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from svcctl.kernel import Refused, in_throwaway_netns  # noqa: E402
from svcctl.nftables.nft import Nft  # noqa: E402
from svcctl.nftables.render import render_ruleset  # noqa: E402
from svcctl.options import build_options  # noqa: E402
from svcctl.pipeline import compile_rules  # noqa: E402
from svcctl.sources import read_manifests  # noqa: E402

SVCCTL = str(Path(sys.executable).parent / "svcctl")
EXAMPLE = str(ROOT / "examples" / "web.yaml")
NODE = ["--node-name", "node-1", "--cluster-cidr", "10.244.0.0/16"]


def sh(*argv: str, stdin: str | None = None) -> str:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True).stdout


def in_netns(work):  # type: ignore[no-untyped-def]
    return in_throwaway_netns(work)


def pretty(text: str) -> str:
    return json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n"


def record_web() -> dict[str, str]:
    def work() -> dict[str, str]:
        sh(SVCCTL, "apply", EXAMPLE, *NODE)
        out = {"web.json": pretty(sh("nft", "-j", "list", "ruleset")), "web.txt": sh("nft", "list", "table", "ip", "svcctl")}
        sh("nft", "delete", "chain", "ip", "svcctl", "filter-input")
        out["web-hook-deleted.json"] = pretty(sh("nft", "-j", "list", "ruleset"))
        return out

    return in_netns(work)


def record_foreign() -> dict[str, str]:
    def work() -> dict[str, str]:
        sh("nft", "-f", "-", stdin="table ip svcctl {\n chain mine {\n }\n}\ntable ip6 svcctl {\n counter hits {\n }\n}\n")
        return {"foreign.json": pretty(sh("nft", "-j", "list", "ruleset"))}

    return in_netns(work)


def record_refusal() -> dict[str, str]:
    options = build_options({"node-name": "node-1", "cluster-cidr": ["10.244.0.0/16"]})
    ruleset = compile_rules(read_manifests([EXAMPLE]), options)[2].rules
    table = ruleset.tables[0]
    chain = next(c for c in table.endpoint_chains if "shop/web" in c.name)
    bad_pick = chain.picks[0]._replace(affinity="aff-AAAAAAAA-shop/web/tcp/http/missing")
    bad_chain = dataclasses.replace(chain, picks=(bad_pick, *chain.picks[1:]), affinity_timeout=5)
    bad_table = dataclasses.replace(table, endpoint_chains=(bad_chain, *table.endpoint_chains[1:]))
    script = render_ruleset(dataclasses.replace(ruleset, tables=(bad_table, *ruleset.tables[1:])))

    def work() -> dict[str, str]:
        try:
            Nft().run(script)
        except Refused as err:
            return {"refused.json": json.dumps({"script": script, "error": str(err)}, indent=1) + "\n"}
        raise SystemExit("nft accepted the corrupted ruleset")

    return in_netns(work)


def main() -> None:
    for recorded in (record_web(), record_foreign(), record_refusal()):
        for name, text in recorded.items():
            (HERE / name).write_text(text)
            print(f"wrote tests/kernel/{name}")


if __name__ == "__main__":
    main()
