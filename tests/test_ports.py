"""Ports for the processes a run starts: distinct within a call, never one the caller avoids."""

from __future__ import annotations

import socket

from aws_masker_stack.ports import free_port, free_ports
from aws_masker_stack.up import build_parser, listen_ports


def test_ports_from_one_call_are_distinct_and_free() -> None:
    ports = free_ports(64)
    assert len(set(ports)) == 64
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # raises if anything still holds it


def test_a_port_to_avoid_is_never_handed_out() -> None:
    allowed = set(free_ports(500))  # avoid every other port: the kernel's first picks are refused
    avoid = set(range(1, 65536)) - allowed
    for _ in range(8):
        assert free_port(avoid) in allowed


def test_up_keeps_its_private_redis_off_the_stack_ports() -> None:
    args = build_parser().parse_args(
        ["--listen", "127.0.0.1:41001", "--stub-listen", "[::1]:41002", "--subscriber-listen", ":41003"]
    )
    assert listen_ports(args) == [41001, 41002, 41003]
    assert listen_ports(build_parser().parse_args([])) == [8000, 8081, 8090]
