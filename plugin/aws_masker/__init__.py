"""kong-aws-masker: mask AWS identifiers in Claude requests, restore them in responses.

The masking engine (``patterns``, ``scanner``, ``tokens``, ``engine``, ``jsontext``, ``jsonbody``, ``sse``,
``body``) knows nothing about Kong. ``kong_plugin`` is the thin Kong-facing entry.
"""

__version__ = "0.2.0"
