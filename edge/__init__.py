"""edge-pose: BlazePose on a Raspberry Pi, published over MQTT.

Importing :mod:`edge` must work on any machine: no hardware library (picamera2,
libedgetpu) and no vendor runtime is imported at package level.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
