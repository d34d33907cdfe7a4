"""The plugin's config schema in Kong's schema DSL (what ``--dump`` reports and Kong validates).

Every field has an effect and a test (tests/test_plugin.py). The engine's own config (``config.py``)
uses the same field names.
"""

from __future__ import annotations

from .config import CATEGORY_TOGGLES

MIB = 1024 * 1024
DEFAULT_MAX_BODY_SIZE = 10 * MIB

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
            "description": "The tokens' MAC key; the same on every node. Unset: a random per-process secret",
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
        "refuse_binary_documents": {
            "type": "boolean",
            "default": False,
            "required": True,
            "description": "refuse (415) requests with a base64 image or binary document (not maskable)",
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
    # -- monitoring events (docs/events.md) -------------------------------------------------------
    {
        "enable_event_monitoring": {
            "type": "boolean",
            "default": False,
            "required": True,
            "description": "publish sampled, batched masking events to Redis (fire-and-forget)",
        }
    },
    {
        "event_sampling_rate": {
            "type": "number",
            "default": 1.0,
            "required": True,
            "between": [0, 1],
            "description": "share of requests that get events (both of a request's events, or neither)",
        }
    },
    {
        "event_batch_size": {
            "type": "integer",
            "default": 10,
            "required": True,
            "between": [1, 1000],
            "description": "events per PUBLISH; 1 publishes each event as itself",
        }
    },
    {
        "event_flush_interval_ms": {
            "type": "integer",
            "default": 1000,
            "required": True,
            "between": [10, 60000],
            "description": "a partial batch is published this long after its first event",
        }
    },
    {
        "event_queue_size": {
            "type": "integer",
            "default": 10000,
            "required": True,
            "between": [1, 1000000],
            "description": "events held per plugin server process; more are dropped (and counted)",
        }
    },
    {
        "event_stats_interval_s": {
            "type": "integer",
            "default": 60,
            "required": True,
            "between": [1, 86400],
            "description": "how often the publisher's counters are logged and published",
        }
    },
    {
        "redis_event_channel": {
            "type": "string",
            "default": "aws-masker:events",
            "required": True,
            "description": "Redis Pub/Sub channel of the events",
        }
    },
    {"redis_host": {"type": "string", "default": "127.0.0.1", "required": True, "description": "Redis host"}},
    {
        "redis_port": {
            "type": "integer",
            "default": 6379,
            "required": True,
            "between": [1, 65535],
            "description": "Redis port",
        }
    },
    {
        "redis_username": {
            "type": "string",
            "required": False,
            "referenceable": True,
            "description": "Redis ACL user (unset: the default user)",
        }
    },
    {
        "redis_password": {
            "type": "string",
            "required": False,
            "referenceable": True,
            "description": "Redis password ({vault://env/...} reads it from the environment)",
        }
    },
    {
        "redis_db": {
            "type": "integer",
            "default": 0,
            "required": True,
            "between": [0, 1023],
            "description": "Redis database number",
        }
    },
    {"redis_ssl": {"type": "boolean", "default": False, "required": True, "description": "TLS to Redis"}},
    {
        "redis_ssl_verify": {
            "type": "boolean",
            "default": True,
            "required": True,
            "description": "verify the Redis server's TLS certificate and host name",
        }
    },
    {
        "redis_ssl_ca_file": {
            "type": "string",
            "required": False,
            "description": "PEM file of the CA that signed the Redis certificate (unset: the system CAs)",
        }
    },
    {
        "redis_timeout_ms": {
            "type": "integer",
            "default": 2000,
            "required": True,
            "between": [1, 60000],
            "description": "connect and command timeout of the publisher's Redis connection",
        }
    },
)
