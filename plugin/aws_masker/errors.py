"""Errors the engine raises. Each carries a stable code and never the offending input."""

from __future__ import annotations


class MaskerError(Exception):
    """Base class. ``code`` is the ``AWS_MASKER_<code>`` suffix, ``status`` the HTTP status to use."""

    code = "2001"
    status = 503

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidEncodingError(MaskerError):
    """A body that is not valid UTF-8 (or not decodable with its Content-Encoding), or that holds NUL
    bytes (UTF-16 or UTF-32 without a byte order mark is valid UTF-8 when it is ASCII), or a string
    still JSON-escaped past the levels the scan sees through (scanner.ESCAPE_LEVELS), or text of a
    Messages request written twice with different values under one key (jsonbody.py)."""

    code = "2004"
    status = 400


class BinaryDocumentError(MaskerError):
    """A binary document or image in a request, with ``refuse_binary_documents`` on."""

    code = "2006"
    status = 415


class BodyTooLargeError(MaskerError):
    """A body the gateway could not hand over, or larger than the configured limit."""

    code = "2005"
    status = 413


class BodyUnavailableError(MaskerError):
    """Kong handed over an empty body for a request that has one (Content-Length, chunked)."""

    code = "2003"
    status = 503


class ResponseTooLargeError(MaskerError):
    """The (decompressed) upstream body exceeds max_response_size: it is passed through unrestored."""

    code = "3002"
    status = 502


class RestoreError(MaskerError):
    """The upstream response could not be decoded or restored."""

    code = "3001"
    status = 502


class UnsupportedMediaTypeError(MaskerError):
    """A request body whose Content-Type the Messages API does not take (it takes JSON only)."""

    code = "2007"
    status = 415


class UnsupportedEncodingError(MaskerError):
    """A request body with a Content-Encoding the plugin cannot decode (unknown, or stacked)."""

    code = "2008"
    status = 415


class IdentifierInRequestLineError(MaskerError):
    """An identifier in a place the plugin may not rewrite: the request path (Kong copies it into
    X-Forwarded-Path) or a protocol header that must reach the upstream unchanged."""

    code = "2009"
    status = 400


class TooManyHeadersError(MaskerError):
    """More request headers than Kong lets a plugin read (1000): the rest could not be checked."""

    code = "2010"
    status = 431


class OpaqueDataError(MaskerError):
    """A base64 image or document whose bytes are not what its ``media_type`` says (or whose type is
    not one the API reads), or opaque data (an image, a document, a thinking signature) whose decoded
    bytes carry an identifier: it cannot be masked, and it is not what it claims to be."""

    code = "2011"
    status = 400


class TooComplexError(MaskerError):
    """AWS CLI text output too varied to lay on its structures within the per-text budget (only a
    crafted text gets there; see cliformats.py): refused rather than masked slowly or partly."""

    code = "2012"
    status = 413
