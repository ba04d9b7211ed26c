"""Whether an address can be reached only from this machine (loopback), for the safe defaults."""

from __future__ import annotations

import ipaddress


def host_is_loopback(host: str) -> bool:
    """A host name or IP (IPv6 with or without brackets); an empty host means every interface."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(listen: str) -> bool:
    """`host:port`, IPv6 hosts in brackets (`[::1]:50051`)."""
    return host_is_loopback(listen.rsplit(":", 1)[0])
