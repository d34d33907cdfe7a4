"""``python -m aws_masker_gateway --config kong.yml --listen 127.0.0.1:8000``."""

import sys

from .cli import gateway_main

sys.exit(gateway_main())
