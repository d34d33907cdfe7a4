"""The plugin's config schema in Kong's schema DSL (what ``--dump`` reports and Kong validates).

Every field has an effect and a test (tests/test_plugin.py). The engine's own config (``config.py``)
uses the same field names.
"""

from __future__ import annotations

from .config import CATEGORY_TOGGLES

MIB = 1024 * 1024
DEFAULT_MAX_BODY_SIZE = 10 * MIB
DEFAULT_MAX_RESPONSE_SIZE = 32 * MIB

_TOGGLE_HELP = {
    "mask_ec2_instances": "EC2 instance IDs and the whole EC2 family (ami, vol, snap, sg, subnet, vpc, ...)",
    "mask_s3_buckets": "S3 bucket names (URIs, URLs, Bucket keys, CLI flags, listings, access logs, prose)",
    "mask_rds_instances": "RDS instance and cluster identifiers and RDS endpoint hostnames",
    "mask_private_ips": "RFC 1918 and 100.64/10 addresses, EC2 private DNS names",
    "mask_public_ips": "public IPv4 addresses",
    "mask_ipv6": "IPv6 addresses",
    "mask_arns": "ARNs of every partition, masked whole",
    "mask_account_ids": "12-digit account IDs next to an account or owner key or word; S3 canonical user IDs",
    "mask_credentials": "access key IDs, IAM unique IDs, secret access keys, session tokens",
    "mask_hostnames": "AWS endpoint hostnames that embed a resource name (ELB, CloudFront, ...)",
}

SCHEMA: tuple[dict, ...] = (
    *(
        {name: {"type": "boolean", "default": True, "required": True, "description": _TOGGLE_HELP[name]}}
        for name in CATEGORY_TOGGLES
    ),
    {
        "allow_list": {
            "type": "array",
            "elements": {"type": "string", "len_min": 1},
            "default": [],
            "required": True,
            "description": "exact values that are never masked",
        }
    },
    {
        "token_secret": {
            "type": "string",
            "required": False,
            "referenceable": True,
            "len_min": 16,
            "description": "HMAC key for tokens; the same on every node. Unset: a random per-process secret",
        }
    },
    {
        "max_body_size": {
            "type": "integer",
            "default": DEFAULT_MAX_BODY_SIZE,
            "required": True,
            "between": [1, 100 * MIB],
            "description": "largest request body masked; larger ones are refused with 413",
        }
    },
    {
        "max_response_size": {
            "type": "integer",
            "default": DEFAULT_MAX_RESPONSE_SIZE,
            "required": True,
            "between": [1, 100 * MIB],
            "description": "largest response body restored; larger ones pass through with tokens",
        }
    },
    {
        "log_masked_requests": {
            "type": "boolean",
            "default": False,
            "required": True,
            "description": "log one line per request with counts per category (never the values)",
        }
    },
)
