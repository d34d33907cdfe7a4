"""One phase of one external plugin: Kong's ``Rpc:handle_event`` and ``bridge_loop`` (``mp_rpc.lua``).

Failure semantics are Kong's, deliberately:

* an error string from HandleEvent/Step, ``"no data"`` (timeout/EOF) or a connect failure with a
  cached instance is logged and the request **continues unmodified** (fail-open);
* an error containing "no plugin instance" resets the plugin's instances and retries the phase;
* ``StartInstance`` failing, a PDK call raising in Lua, or a broken reply raise :class:`LuaError`
  (500 in access/response) and the plugin never gets a reply for that event;
* ``kong.response.exit``/``error`` end the loop without a reply.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .context import LuaError, PdkExit, RequestContext
from .instances import InstanceClaimError, StartInstanceError
from .luamsgpack import PackError, to_text
from .pdk import STEP_METHODS, PdkCall, UnknownPdkMethod, call_pdk
from .plugins import ConfiguredPlugin, ExternalPluginRuntime
from .rpc import RpcError, RpcProtocolError

log = logging.getLogger("aws_masker_gateway.bridge")

MAX_INSTANCE_RESETS = 3  # Kong recurses without a bound; one retry is what a restart needs


def spread_args(ctx: RequestContext, plugin: str, method: str, args: Any) -> list[Any]:
    """``unpack(args)``: a nil hole truncates the arguments on Kong. Flag it loudly."""
    if not isinstance(args, list):
        return [args]
    if None in args:
        index = args.index(None)
        message = (
            f"protocol error: nil at Args[{index + 1}] of {method} from plugin '{plugin}'; "
            f"Kong's unpack() passes only the first {index} argument(s)"
        )
        log.error("%s (request_id: %s)", message, ctx.request_id)
        ctx.record.protocol_errors.append(message)
        return args[:index]
    return args


async def run_external_phase(
    plugin: ConfiguredPlugin, ctx: RequestContext, phase: str, body_buffer_size: int
) -> None:
    """Run ``phase`` of ``plugin``; return normally on success and on every fail-open error."""
    runtime = plugin.external
    assert runtime is not None
    for attempt in range(MAX_INSTANCE_RESETS + 1):
        try:
            instance_id = await runtime.instances.get_instance_id(plugin.entity.id, plugin.kong_config)
        except InstanceClaimError as exc:
            _fail_open(ctx, plugin, str(exc))
            return
        except StartInstanceError as exc:
            raise LuaError(f"starting instance: {exc}") from exc
        try:
            await _bridge_loop(runtime, plugin, ctx, instance_id, phase, body_buffer_size)
            return
        except RpcError as exc:
            err = str(exc)
            if "no plugin instance" in err.lower() and attempt < MAX_INSTANCE_RESETS:
                runtime.instances.reset()
                ctx.kong_log("warn", err, plugin=plugin.name)
                continue
            _fail_open(ctx, plugin, err)
            return
        except RpcProtocolError as exc:
            raise LuaError(str(exc)) from exc


def _fail_open(ctx: RequestContext, plugin: ConfiguredPlugin, err: str) -> None:
    ctx.kong_log("err", err, plugin=plugin.name)
    ctx.record.plugin_errors.append(f"{plugin.name}: {err}")


async def _bridge_loop(
    runtime: ExternalPluginRuntime,
    plugin: ConfiguredPlugin,
    ctx: RequestContext,
    instance_id: int,
    phase: str,
    body_buffer_size: int,
) -> None:
    rpc = runtime.rpc
    record = ctx.record
    started = time.perf_counter()
    step = await rpc.call("plugin.HandleEvent", {"InstanceId": instance_id, "EventName": phase})
    record.rpc_seconds += time.perf_counter() - started
    event_id = _field(step, b"EventId")
    while True:
        data = _field(step, b"Data")
        if data == b"ret":
            return
        if not isinstance(data, dict) or b"Method" not in data:
            raise RpcProtocolError(f"attempt to index field 'Method' (a {type(data).__name__} value)")
        method = to_text(data[b"Method"])
        ctx.record.pdk_calls[plugin.name] += 1
        ctx.record.pdk_phases[phase] += 1
        args = spread_args(ctx, plugin.name, method, data.get(b"Args", []))
        call = PdkCall(ctx, plugin.name, plugin.entity.id, args, body_buffer_size)
        started = time.perf_counter()
        try:
            result = call_pdk(method, call)
        except UnknownPdkMethod:
            ctx.kong_log("err", f"could not find pdk method: {method}", plugin=plugin.name)
            result = None
        except PdkExit:
            return  # terminal: Kong never replies
        except PackError as exc:
            raise LuaError(str(exc)) from exc
        finally:
            record.pdk_seconds += time.perf_counter() - started
        param: dict[str, Any] = {"EventId": event_id}
        if result is not None:
            param["Data"] = result
        started = time.perf_counter()
        try:
            step = await rpc.call(STEP_METHODS.get(method, "plugin.Step"), param)
        except PackError as exc:
            raise LuaError(str(exc)) from exc
        finally:
            record.rpc_seconds += time.perf_counter() - started


def _field(reply: Any, key: bytes) -> Any:
    if not isinstance(reply, dict):
        raise RpcProtocolError(f"attempt to index a {type(reply).__name__} value")
    return reply.get(key)
