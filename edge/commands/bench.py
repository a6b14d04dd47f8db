"""`edge-pose bench` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="(not implemented yet)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print("edge-pose bench: not implemented yet", file=sys.stderr)
    return 2
