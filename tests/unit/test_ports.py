"""devtools.ports: ports for the processes tests start, never from the ephemeral range."""

from __future__ import annotations

import socket

from devtools.ports import LOWEST, ephemeral_range, free_port


def test_free_ports_are_below_the_ephemeral_range_and_bindable_on_every_address() -> None:
    low, high = ephemeral_range()
    assert LOWEST < low <= high
    for _ in range(20):
        port = free_port()
        assert LOWEST <= port < low
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))


def test_a_port_someone_listens_on_is_never_handed_out() -> None:
    listeners = []
    try:
        taken = set()
        for _ in range(50):
            s = socket.socket()
            s.bind(("127.0.0.1", free_port()))
            s.listen()
            listeners.append(s)
            taken.add(s.getsockname()[1])
        assert all(free_port() not in taken for _ in range(200))
    finally:
        for s in listeners:
            s.close()
