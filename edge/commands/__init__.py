"""Sub-commands of ``edge-pose``; see :mod:`edge.cli`."""
