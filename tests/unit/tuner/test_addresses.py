"""Loopback or not: what the scheduler and `tuner tui --web` take for this machine only."""

from __future__ import annotations

import pytest

from tuner.core.addresses import host_is_loopback, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert host_is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.1", "example.com", "localhost."])
def test_hosts_reachable_from_elsewhere_or_unknown(host: str) -> None:
    assert not host_is_loopback(host)


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [("127.0.0.1:50051", True), ("[::1]:50051", True), ("0.0.0.0:50051", False), (":50051", False)],
)
def test_listen_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback
