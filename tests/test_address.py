"""HOST:PORT as the gateway, the stub and ``aws-masker up`` take it (aws_masker_gateway/address.py)."""

from __future__ import annotations

from argparse import ArgumentTypeError

import pytest

from aws_masker_gateway.address import listen_address, parse_listen
from aws_masker_stack.up import build_parser, listen_ports


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        (":0", ("127.0.0.1", 0)),
        ("[::1]:65535", ("::1", 65535)),
        ("gateway.local:80", ("gateway.local", 80)),
    ],
)
def test_addresses_parse(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["8000", "host:", "host:http", "host:65536", "host:-1", ""])
def test_bad_addresses_are_refused_with_what_was_given(value: str) -> None:
    with pytest.raises(ArgumentTypeError, match="expected HOST:PORT"):
        parse_listen(value)
    with pytest.raises(ArgumentTypeError, match="expected HOST:PORT"):
        listen_address(value)


def test_up_refuses_a_bad_address_itself_and_knows_its_ports(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--stub-listen", "41003"])
    assert exit_info.value.code == 2
    assert "expected HOST:PORT, got '41003'" in capsys.readouterr().err
    args = build_parser().parse_args(["--listen", "[::1]:41001", "--subscriber-listen", ":41003"])
    assert args.listen == "[::1]:41001"  # handed on to the gateway as written
    assert listen_ports(args) == [41001, 8081, 41003]
