"""Engine configuration: which categories to mask, what never to mask, and the token secret.

The field names are the plugin's config field names (the Kong schema in ``kong_plugin`` declares the
same fields), so one dict configures both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

# config field -> catalogue category it switches
CATEGORY_TOGGLES: dict[str, str] = {
    "mask_ec2_instances": "ec2",
    "mask_s3_buckets": "s3",
    "mask_rds_instances": "rds",
    "mask_private_ips": "private_ip",
    "mask_public_ips": "public_ip",
    "mask_ipv6": "ipv6",
    "mask_arns": "arn",
    "mask_account_ids": "account",
    "mask_credentials": "credentials",
    "mask_hostnames": "hostname",
}


@dataclass(frozen=True)
class MaskerConfig:
    mask_ec2_instances: bool = True
    """EC2 instance IDs and the whole EC2 family (ami, vol, snap, sg, subnet, vpc, eni, ...)."""
    mask_s3_buckets: bool = True
    mask_rds_instances: bool = True
    mask_private_ips: bool = True
    """RFC 1918 and 100.64/10 addresses, EC2 private DNS names, dash-form private IPs in hostnames."""
    mask_public_ips: bool = True
    mask_ipv6: bool = True
    mask_arns: bool = True
    mask_account_ids: bool = True
    mask_credentials: bool = True
    """Access key IDs, IAM unique IDs, secret access keys, session tokens."""
    mask_hostnames: bool = True
    """AWS endpoint hostnames that embed a resource name or ID (ELB, API Gateway, CloudFront, ...)."""
    allow_list: tuple[str, ...] = ()
    """Exact values that are never masked."""
    token_secret: str | None = None
    """The tokens' MAC key (keyed BLAKE2s). Unset: a random per-process secret (tokens differ across
    nodes and restarts)."""
    refuse_binary_documents: bool = False
    """Refuse a request that carries a base64 image or a binary (not text/plain) document, which
    cannot be masked, instead of passing it."""

    @property
    def enabled_categories(self) -> frozenset[str]:
        return frozenset(cat for name, cat in CATEGORY_TOGGLES.items() if getattr(self, name))

    @classmethod
    def from_mapping(cls, conf: Mapping[str, Any]) -> MaskerConfig:
        """Build from a plugin config dict; unknown keys (Kong's ``__seq__``, other fields) are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key in known:
            if key in conf and conf[key] is not None:
                kwargs[key] = conf[key]
        if "allow_list" in kwargs:
            kwargs["allow_list"] = tuple(kwargs["allow_list"])
        if kwargs.get("token_secret") == "":
            kwargs["token_secret"] = None
        return cls(**kwargs)
