"""Local Kong 3.9 stand-in that drives kong-pdk plugin servers over Kong's external-plugin protocol.

The gateway plays Kong's side of the MessagePack RPC protocol faithfully (encodings, instance
lifecycle, phase restrictions, fail-open semantics), runs the bundled ``pre-function`` and
``post-function`` plugins with a real Lua runtime and proxies HTTP with Kong's routing rules.
"""

KONG_VERSION = "3.9.1"
SERVER_TOKEN = f"kong/{KONG_VERSION}"

__all__ = ["KONG_VERSION", "SERVER_TOKEN"]
