"""`edge-pose listen` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("listen", help="(not implemented yet)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print("edge-pose listen: not implemented yet", file=sys.stderr)
    return 2
