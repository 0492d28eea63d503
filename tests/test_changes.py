"""`svcctl diff` as a reader thinks of a change (svcctl.nftables.changes), on a listing recorded
from the real kernel: per Service port first, then the rules with the names' hashes taken out."""

from __future__ import annotations

from pathlib import Path

from svcctl.nftables.changes import diff_text, port_states, strip_hashes, summary
from svcctl.nftables.listing import normalize

WEB = (Path(__file__).resolve().parent / "kernel" / "web.txt").read_text()


def with_endpoint(listing: str, old: str, new: str) -> str:
    """The listing after svcctl replaced one endpoint of shop/web: a new chain name (its hash
    covers the rules) everywhere the chain is named."""
    return listing.replace(old, new).replace("svc-RKETNYKA-shop/web", "svc-ZZZZZZZZ-shop/web")


def test_states_per_port() -> None:
    states = port_states(normalize(WEB))
    assert set(states) == {"shop/web/tcp/http", "shop/api/tcp/8080"}
    web = states["shop/web/tcp/http"]
    assert web.endpoints == ["10.244.1.2:8080", "10.244.1.3:8080", "10.244.1.4:8080"]
    assert web.addresses == ["10.97.26.104 tcp 80"] and web.node_ports == ["tcp 30080"]
    assert web.external == ["meta mark set meta mark | 0x00004000", "goto svc-shop/web/tcp/http"]
    api = states["shop/api/tcp/8080"]
    assert api.endpoints == ["10.244.1.5:8080"] and api.affinity == "10m"


def test_one_endpoint_replaced_is_one_line_and_one_rule() -> None:
    changed = with_endpoint(WEB, "10.244.1.3:8080", "10.244.1.9:8080")
    text = diff_text([WEB], [changed])
    assert text.startswith("# shop/web:http/tcp: endpoint 10.244.1.3:8080 -> 10.244.1.9:8080\n--- live\n+++ planned\n")
    changed_lines = [line for line in text.splitlines() if line.startswith(("+\t", "-\t"))]
    assert changed_lines == [
        "-\t\tmeta l4proto tcp numgen random mod 2 0 dnat to 10.244.1.3:8080",
        "+\t\tmeta l4proto tcp numgen random mod 2 0 dnat to 10.244.1.9:8080",
    ]  # the renamed chain and the map element pointing at it are no difference once hashes are out
    raw = diff_text([WEB], [changed], raw=True)
    assert "goto svc-ZZZZZZZZ-shop/web/tcp/http" in raw and "svc-RKETNYKA" in raw  # --raw: as listed


def test_services_added_removed_and_changed() -> None:
    no_api = "\n".join(line for line in WEB.splitlines() if "shop/api" not in line)
    assert summary(normalize(WEB), normalize(no_api))[0].startswith("shop/api:8080/tcp: removed (10.96.0.20 tcp 8080; 1 endpoint(s))")
    assert summary(normalize(no_api), normalize(WEB))[0].startswith("shop/api:8080/tcp: added")
    longer = WEB.replace("timeout 10m", "timeout 1h")
    assert summary(normalize(WEB), normalize(longer)) == ["shop/api:8080/tcp: session affinity 10m -> 1h"]
    moved = WEB.replace("tcp . 30080 : goto", "tcp . 30081 : goto")
    assert summary(normalize(WEB), normalize(moved)) == ["shop/web:http/tcp: node port tcp 30080 -> tcp 30081"]


def test_a_big_services_map_rule_is_read_as_its_endpoints() -> None:
    spread = WEB.replace(
        "\t\tmeta l4proto tcp numgen random mod 3 0 dnat to 10.244.1.2:8080\n\t\tmeta l4proto tcp numgen random mod 2 0 dnat to 10.244.1.3:8080\n\t\tmeta l4proto tcp dnat to 10.244.1.4:8080",
        "\t\tmeta l4proto tcp dnat ip to numgen random mod 3 map { 0 : 10.244.1.2 . 8080, 1 : 10.244.1.3 . 8080, 2 : 10.244.1.4 . 8080 }",
    )
    assert spread != WEB
    assert port_states(normalize(spread))["shop/web/tcp/http"].endpoints == ["10.244.1.2:8080", "10.244.1.3:8080", "10.244.1.4:8080"]
    v6 = "\tchain svc-AAAAAAAA-a/b/tcp/80 {\n\t\tmeta l4proto tcp dnat ip6 to numgen random mod 2 map { 0 : fd00::1 . 80, 1 : fd00::2 . 80 }\n\t}\n"
    assert port_states(v6)["a/b/tcp/80"].endpoints == ["[fd00::1]:80", "[fd00::2]:80"]


def test_no_difference_no_output() -> None:
    assert diff_text([WEB], [WEB]) == "" == diff_text([WEB], [WEB], raw=True)


def test_strip_hashes_only_touches_per_port_names() -> None:
    assert strip_hashes("goto svc-RKETNYKA-shop/web/tcp/http; @aff-ASAZEGWU-x; frame-29198bce9f753bef; reject-chain") == (
        "goto svc-shop/web/tcp/http; @aff-x; frame-29198bce9f753bef; reject-chain"
    )


def test_colour_only_at_a_terminal_and_never_with_no_color(monkeypatch) -> None:
    import io

    from svcctl.cli import colour

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour.enabled(Terminal()) and not colour.enabled(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour.enabled(Terminal())
    painted = colour.diff("# web: endpoint a -> b\n--- live\n+++ planned\n@@ -1 +1 @@\n-old\n+new\n same\n")
    assert painted.splitlines()[4] == "\033[31m-old\033[0m" and painted.splitlines()[6] == " same"
    assert painted.endswith("\n")
