"""``aws-masker-server``: the dedicated kong-pdk plugin server for aws-masker.

    aws-masker-server --kong-prefix /usr/local/kong     # serve <prefix>/aws-masker.sock
    aws-masker-server --dump                            # plugin info for Kong's query_cmd

Always threads mode (gevent mode truncates large replies, multiprocessing drops per-instance state:
docs/kong-protocol.md §4) and Python-style PDK returns (values, exceptions on error).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

PLUGIN_NAME = "aws-masker"
_REFUSED = {"-g", "--gevent", "-m", "--multiprocessing"}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    refused = _REFUSED.intersection(args)
    if refused:
        print(
            f"aws-masker-server: {', '.join(sorted(refused))} is not supported; threads mode is required",
            file=sys.stderr,
        )
        return 2
    if "--no-lua-style" not in args:
        args.append("--no-lua-style")
    # kong-pdk emits DeprecationWarnings on stderr under Python 3.11+; they are noise in Kong's log.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from kong_pdk.cli import start_dedicated_server

    from . import pdkserver

    pdkserver.install()

    from . import kong_plugin

    sys.argv = [sys.argv[0], *args]
    start_dedicated_server(
        PLUGIN_NAME, kong_plugin.Plugin, kong_plugin.version, kong_plugin.priority, list(kong_plugin.Schema)
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
