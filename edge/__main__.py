"""``python -m edge`` is ``edge-pose``."""

import sys

from edge.cli import main

sys.exit(main())
