"""``python -m aws_masker_subscriber`` is ``aws-masker subscriber``."""

import sys

from .cli import subscriber_main

sys.exit(subscriber_main())
