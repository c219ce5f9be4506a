"""Fixtures for vision's tests: a network guard, the real hard-hat images, the prepared runtime."""

from __future__ import annotations

import ipaddress
import socket

import pytest


class OutsideConnection(AssertionError):
    """A test tried to reach beyond this machine."""


def _is_local(host) -> bool:
    if host is None:
        return True
    host = str(host)
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_network(monkeypatch):
    """Fail on any name lookup or connection to a non-loopback address; yields the list of attempts."""
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def _check(sock, address):
        host = address[0] if isinstance(address, tuple) else None
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(host):
            attempts.append(f"connect {address}")
            raise OutsideConnection(f"outside connection attempted: {address}")

    def connect(self, address):
        _check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        _check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            attempts.append(f"getaddrinfo {host}")
            raise OutsideConnection(f"name lookup attempted: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert not attempts, f"outside connections attempted: {attempts}"


@pytest.fixture(scope="session")
def hardhat(shared_data):
    """The real hard-hat images (YOLO labels, some of them polygons)."""
    return shared_data / "detection" / "hardhat"
