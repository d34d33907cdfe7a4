"""Kong's error responses: ``kong/error_handlers.lua`` messages and ``kong/tools/http.lua`` templates."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import RequestContext

BODIES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    411: "Length required",
    412: "Precondition failed",
    413: "Payload too large",
    414: "URI too long",
    417: "Expectation failed",
    494: "Request header or cookie too large",
    500: "An unexpected error occurred",
    502: "An invalid response was received from the upstream server",
    503: "The upstream server is currently unavailable",
    504: "The upstream server is timing out",
}
NO_ROUTE = "no Route matched with those values"
# what Kong's access-phase iterator stores when a plugin raises: kong.response.exit(500, {message=...})
UNEXPECTED_ERROR_JSON = b'{"message":"An unexpected error occurred"}'

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"
XML = "application/xml; charset=utf-8"
PLAIN = "text/plain; charset=utf-8"

_TEMPLATES = {
    JSON: '{\n  "message":"%s",\n  "request_id":"%s"\n}',
    HTML: (
        '<!doctype html>\n<html>\n  <head>\n    <meta charset="utf-8">\n    <title>Error</title>\n'
        "  </head>\n  <body>\n    <h1>Error</h1>\n    <p>%s.</p>\n    <p>request_id: %s</p>\n"
        "  </body>\n</html>\n"
    ),
    XML: (
        '<?xml version="1.0" encoding="UTF-8"?>\n<error>\n  <message>%s</message>\n'
        "  <requestid>%s</requestid>\n</error>\n"
    ),
    PLAIN: "%s\nrequest_id: %s\n",
}


def response_type(accept: str | None) -> str:
    """``kong.tools.http.get_response_type``: JSON unless the client prefers HTML, XML or text."""
    if not accept:
        return JSON
    for media in (part.split(";", 1)[0].strip().lower() for part in accept.split(",")):
        if media in ("application/json", "*/*", "application/*"):
            return JSON
        if media == "text/html":
            return HTML
        if media in ("application/xml", "text/xml"):
            return XML
        if media in ("text/plain", "text/*"):
            return PLAIN
    return JSON


def default_message(status: int) -> str:
    return BODIES.get(status, f"The upstream server responded with {status}")


def error_body(
    status: int, message: str | None, accept: str | None, ctx: RequestContext | None
) -> tuple[str, bytes]:
    """Content type and body of ``kong.response.error(status, message)``."""
    content_type = response_type(accept)
    template = _TEMPLATES.get(content_type.split(";")[0] + "; charset=utf-8", _TEMPLATES[JSON])
    request_id = ctx.request_id if ctx else uuid.uuid4().hex  # nginx's $request_id for its own errors
    text = template % (message if message is not None else default_message(status), request_id)
    return content_type, text.encode("utf-8")
