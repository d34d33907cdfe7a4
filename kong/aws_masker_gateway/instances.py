"""Kong's per-worker plugin instance cache (``get_instance_id`` / ``reset_instance`` in ``plugin.lua``).

Instances are keyed by the plugin entity id. A cached instance is reused while its ``seq`` equals the
config's ``__seq__``; otherwise a new one is started with ``StartInstance`` and the old one is closed
with ``CloseInstance`` (errors ignored). Concurrent requests wait for an instance being started (up to
10 s, then Kong's "Could not claim instance_id" error).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from .rpc import RpcClient, RpcError

log = logging.getLogger("aws_masker_gateway.instances")

CLAIM_WAIT = 10.0


class StartInstanceError(Exception):
    """``StartInstance`` failed; Kong raises (a 500 in access/rewrite)."""


class InstanceClaimError(Exception):
    """Another request has been starting this instance for too long; Kong logs it and fails open."""


@dataclass
class _Slot:
    seq: int
    plugin_id: str
    id: int | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class InstanceEvent:
    kind: str  # "start" | "close" | "reset"
    plugin_id: str
    instance_id: int | None
    seq: int | None = None
    config: dict[str, Any] | None = None


class InstanceCache:
    def __init__(self, plugin_name: str, rpc: RpcClient, claim_wait: float = CLAIM_WAIT) -> None:
        self.plugin_name = plugin_name
        self.rpc = rpc
        self.claim_wait = claim_wait
        self._slots: dict[str, _Slot] = {}
        self.events: list[InstanceEvent] = []

    def cached_id(self, plugin_id: str) -> int | None:
        slot = self._slots.get(plugin_id)
        return slot.id if slot else None

    async def get_instance_id(self, plugin_id: str, conf: dict[str, Any]) -> int:
        slot = self._slots.get(plugin_id)
        while slot is not None and slot.id is None:
            try:
                await asyncio.wait_for(slot.ready.wait(), self.claim_wait)
            except asyncio.TimeoutError:
                self._slots.pop(plugin_id, None)
                raise InstanceClaimError(
                    f"Could not claim instance_id for {self.plugin_name} (key: {plugin_id})"
                ) from None
            slot = self._slots.get(plugin_id)
        seq = conf["__seq__"]
        if slot is not None and slot.id is not None and slot.seq == seq and slot.plugin_id == plugin_id:
            return slot.id
        old_id = slot.id if slot else None
        claim = _Slot(seq=seq, plugin_id=plugin_id)
        self._slots[plugin_id] = claim
        try:
            status = await self.rpc.call(
                "plugin.StartInstance",
                {"Name": self.plugin_name, "Config": json.dumps(conf, separators=(",", ":"))},
            )
            instance_id = status[b"Id"]
        except (RpcError, KeyError, TypeError) as exc:
            log.error("[kong] [%s] starting instance: %s", self.plugin_name, exc)
            self._slots.pop(plugin_id, None)
            claim.ready.set()
            raise StartInstanceError(str(exc)) from exc
        claim.id = instance_id
        claim.ready.set()
        self.events.append(InstanceEvent("start", plugin_id, instance_id, seq, conf))
        if old_id is not None:
            try:
                await self.rpc.call("plugin.CloseInstance", old_id)
            except RpcError as exc:
                log.debug("closing instance #%s of %s: %s (ignored)", old_id, self.plugin_name, exc)
            self.events.append(InstanceEvent("close", plugin_id, old_id))
        return instance_id

    def reset(self) -> None:
        """``reset_instances_for_plugin``: forget every instance of this plugin."""
        for plugin_id, slot in list(self._slots.items()):
            if slot.id is not None:
                del self._slots[plugin_id]
                self.events.append(InstanceEvent("reset", plugin_id, slot.id))
