"""The Kong-facing entry of aws-masker: schema, version, priority and the two phases.

Everything here is thin: ``phases`` does the work, the engine knows nothing about Kong. The
response is restored by the Lua companion plugin ``aws-masker-restore`` (kong/plugins/), because
Kong gives external plugins no body filter.
"""

from __future__ import annotations

from typing import Any

from . import __version__
from .config import MaskerConfig
from .engine import Masker
from .events import EventSettings, Monitor
from .phases import Limits, access, fail, log_phase
from .schema import SCHEMA

Schema = SCHEMA
version = __version__
# Kong runs higher priorities first. 771 puts masking after every plugin that builds the prompt
# (request-transformer 801, ai-request-transformer 777, ai-prompt-template 773, ai-prompt-decorator
# 772: what they add is masked too) and before ai-proxy (770), which sends it upstream. It ties with
# ai-prompt-guard (771), which only reads the prompt.
priority = 771


class Plugin:
    def __init__(self, config: dict[str, Any]) -> None:
        self.masker = Masker(MaskerConfig.from_mapping(config))
        self.limits = Limits.from_mapping(config)
        self.monitor = Monitor(EventSettings.from_mapping(config))

    def access(self, kong: Any) -> None:
        # Every phase is wrapped: an exception before the first PDK call would deadlock the plugin
        # server (docs/kong-protocol.md), and any failure must end the request, never forward it.
        try:
            access(kong, self.masker, self.limits, self.monitor.settings.enabled)
        except Exception as exc:  # fail closed on anything
            fail(kong, exc)

    def log(self, kong: Any) -> None:
        # After the response: a failure here loses an event, never a request.
        try:
            log_phase(kong, self.monitor)
        except Exception as exc:
            self.monitor.failed(exc)
