"""``svcctl run``'s options: durations as kube-proxy writes them, addresses; bad ones exit 2."""

from __future__ import annotations

import pytest

from svcctl.agent.health import split_address
from svcctl.cli.run import parse_duration


@pytest.mark.parametrize("text, seconds", [("100ms", 0.1), ("1s", 1.0), ("30s", 30.0), ("1m30s", 90.0), ("0", 0.0), ("2.5", 2.5), ("1h", 3600.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


# Not Go durations either: not a number ("nan", "inf"), an exponent, other scripts' digits,
# longer than Go's int64 nanoseconds.
@pytest.mark.parametrize("text", ["", "soon", "1x", "s", "1s2", "-1s", "nan", "inf", "1e400", "1e3", "１s", "３０", "9999999999999h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_addresses() -> None:
    assert split_address("127.0.0.1:10256") == ("127.0.0.1", 10256)
    assert split_address("[::1]:10249") == ("::1", 10249)
    assert split_address(":10256") == ("0.0.0.0", 10256)
    for bad in ("10256", "host:port", "h:0", "h:70000", "h:１０２５６", "h:²"):
        with pytest.raises(ValueError):
            split_address(bad)


@pytest.mark.parametrize("args, message", [
    (["--sync-period", "soon"], '"soon" is not a duration'),
    (["--sync-period", "0"], "--sync-period must be more than 0"),
    (["--min-sync-period", "1y"], '"1y" is not a duration'),
    (["--sync-period", "nan"], '"nan" is not a duration'),
    (["--sync-period", "1e400"], '"1e400" is not a duration'),
    (["--sync-period", "300000000000s"], '"300000000000s" is longer than a duration can be'),
    (["--metrics-addr", "10249"], "is not an address"),
    (["--log-format", "xml"], '"xml" is not one of text, json'),
])
def test_bad_options_exit_2(run_cli, tmp_path, args: list[str], message: str) -> None:
    result = run_cli("run", str(tmp_path), *args)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err


def test_source_must_be_a_directory(run_cli, tmp_path) -> None:
    result = run_cli("run", str(tmp_path / "missing"))
    assert result.code == 2 and "not a directory" in result.err


def test_help(run_cli) -> None:
    result = run_cli("run", "--help")
    assert result.code == 0 and result.out.startswith("Usage: svcctl run [OPTIONS] [DIRECTORY]")
    assert "Examples:\n" in result.out and "Exit status:" in result.out and "<str>" not in result.out
    for metavar in ("--health-addr HOST:PORT", "--min-sync-period DURATION", "--cluster-cidr CIDR", "--config FILE"):
        assert metavar in result.out, metavar
