"""One regression test per weakness of the original Lua system that the engine fixes
(docs/original-system.md, weaknesses 1-7 and 11). Each docstring quotes the weakness."""

from __future__ import annotations

import json

from aws_masker.body import mask_request, restore_body
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.restore import restore_text
from aws_masker.tokens import TOKEN_RE


def kinds(masked: str) -> list[str]:
    return [t[4:-13] for t in TOKEN_RE.findall(masked)]


def test_1_bodies_over_8k_are_masked(masker: Masker) -> None:
    """#1: bodies over client_body_buffer_size (8k) were forwarded unmasked."""
    filler = "x" * 9000
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": filler + " 10.0.1.100"}]})
    out, result = mask_request(body.encode(), masker)
    assert len(body) > 8192 and b"10.0.1.100" not in out and result.total == 1
    # (that Kong hands such bodies over at all is the plugin's job: see test_plugin.py / e2e tests)


def test_2_json_escapes_are_not_corrupted(masker: Masker) -> None:
    """#2: '\\nmongodb' became '\\AWS_RDS_001' (invalid JSON, upstream 400)."""
    body = json.dumps(
        {"messages": [{"role": "user", "content": "line\nmongodb\nfeedback\ni-0123456789abcdef0"}]}
    )
    out, _ = mask_request(body.encode(), masker)
    text = json.loads(out)["messages"][0]["content"]
    assert text.startswith("line\nmongodb\nfeedback\nAWS_EC2_")


def test_3_arns_are_never_split_and_times_are_not_ipv6(masker: Masker) -> None:
    """#3: the IPv6 pattern split ARNs (cluster name, region leaked) and masked times and IAM actions."""
    arns = [
        "arn:aws:eks:us-east-1:123456789012:cluster/prod-eks",
        "arn:aws:rds:us-east-1:123456789012:db:x",
        "arn:aws:kms:us-east-1:123456789012:key/1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",
        "arn:aws:sqs:us-east-1:123456789012:orders",
        "arn:aws:s3:::bucket-name",
    ]
    masked, _ = masker.mask_text(" ".join(arns))
    assert kinds(masked) == ["EKS_ARN", "RDS_ARN", "KMS_ARN", "SQS_ARN", "S3_ARN"]
    assert "arn:" not in masked and "prod-eks" not in masked and "us-east" not in masked
    text = "at 10:30:45 and 12:30 allow ec2:DescribeInstances; real 2001:db8::1"
    assert masker.mask_text(text)[0].startswith(
        "at 10:30:45 and 12:30 allow ec2:DescribeInstances; real AWS_IPV6_"
    )


def test_4_no_over_matching(masker: Masker) -> None:
    """#4: 'db' words, 'logs' words, '*-cluster', versions like 1.2.3.4 and 13-digit timestamps were
    masked; ami-<17hex> was mislabelled as an EC2 instance."""
    text = (
        "goodbye feedback mongodb adb blogs catalogs dialogs my-cluster redis-cluster "
        "v1.2.3.4 version 1.2.3.4 ts 1700000000000 and 1700000000123"
    )
    assert masker.mask_text(text)[0] == text
    assert kinds(masker.mask_text("ami-0abcdef1234567890")[0]) == ["AMI"]


def test_5_no_misses(masker: Masker) -> None:
    """#5: missed real secret keys, ASIA keys, S3 buckets without 'bucket' in the name, private IPs,
    the last 9 hex of 17-hex VPC/SG/IGW/VPN/EFS IDs, 8-hex legacy IDs, digits in RDS names,
    private DNS names."""
    cases = {
        "aws_secret_access_key = Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m": "Xk3pL9vQ2mR8sT1uW4y",
        "ASIAY34FZKBOKMUTVV7A": "ASIAY34FZKBOKMUTVV7A",
        "s3://acme-prod-data/x": "acme-prod-data",
        "10.0.1.100 172.16.5.4 192.168.0.9": "172.16.5.4",
        "vpc-0a1b2c3d4e5f67890": "4e5f67890",
        "sg-0a1b2c3d4e5f67890": "4e5f67890",
        "igw-0a1b2c3d4e5f67890": "4e5f67890",
        "vpn-0a1b2c3d4e5f67890": "4e5f67890",
        "fs-0a1b2c3d4e5f67890": "4e5f67890",
        "subnet-1a2b3c4d i-1a2b3c4d vol-1a2b3c4d": "1a2b3c4d",
        '"DBInstanceIdentifier": "prod-db-1"': "prod-db",
        "ip-10-0-0-1.ec2.internal": "10-0-0-1",
    }
    for text, leak in cases.items():
        masked = masker.mask_text(text)[0]
        assert leak not in masked, text
    assert kinds(masker.mask_text("vpc-0a1b2c3d4e5f67890 sg-0a1b2c3d4e5f67890")[0]) == [
        "VPC",
        "SECURITY_GROUP",
    ]


def test_6_word_boundaries_and_honest_counts(masker: Masker) -> None:
    """#6: no word boundaries; every occurrence of a substring was replaced; counts were inflated."""
    text = "xsg-12345678 xi-1234567890abcdef0 i-1234567890abcdef0 i-1234567890abcdef0"
    masked, result = masker.mask_text(text)
    assert masked.startswith("xsg-12345678 xi-1234567890abcdef0 AWS_EC2_")
    assert result.total == 2 and len(result.tokens) == 1


def test_7_toggles_work_and_allow_list_exists() -> None:
    """#7: toggles did nothing (mask_<type> vs mask_*_instances); no allow-list."""
    text = "EC2 i-1234567890abcdef0 in 10.0.1.100"
    off = Masker(MaskerConfig(token_secret="s", mask_ec2_instances=False, mask_private_ips=False))
    assert off.mask_text(text)[0] == text
    allow = Masker(MaskerConfig(token_secret="s", allow_list=("i-1234567890abcdef0",)))
    assert allow.mask_text(text)[0].startswith("EC2 i-1234567890abcdef0 in AWS_PRIVATE_IP_")


def test_11_restore_is_exact_per_request_and_split_safe(masker: Masker) -> None:
    """#11: tokens clobbered each other (AWS_EC2_100 vs AWS_EC2_1000), '%' in originals broke the
    replacement, split SSE tokens were not restored. (Gzip: a compressed answer now passes with its
    tokens, never corrupted: tests/gateway/test_restore_plugin.py.)"""
    originals = [f"i-{n:017x}" for n in range(1, 1200)] + ["arn:aws:s3:::pct-%d-bucket/%s"]
    text = " ".join(originals)
    masked, result = masker.mask_text(text)
    assert restore_text(masked, result.tokens)[0] == text
    token = TOKEN_RE.search(masked).group()
    half = len(token) // 2
    events = [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token[:half]}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token[half:]}},
        {"type": "content_block_stop", "index": 0},
    ]
    raw = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    out = restore_body(raw, result.tokens, "text/event-stream").decode()
    assert "i-00000000000000001" in out
