"""The run loop of ``edge-pose run``: frames in, poses out, signals, reload, watchdog.

One thread (the main one) takes the newest frame from the capture thread, runs
the pipeline and hands the result to the publisher, which never blocks. Signals
only set flags that the loop checks between frames, so a frame in hand is always
finished:

* SIGTERM / SIGINT: stop capture, finish the frame, publish ``stopped``, flush, exit 0.
  A second signal of the same kind kills the process (default action).
* SIGHUP: reload the config; apply log and stats changes live, rebuild only the
  parts whose section changed (a new base topic gets a new publisher), keep
  running with the old config when the new one is invalid.

systemd: ``READY=1`` after the first frame went through the pipeline,
``STATUS=`` every stats interval, and ``WATCHDOG=1`` every half ``WatchdogSec``
but only when frames were processed since the previous ping, so a stuck camera
or interpreter gets the service restarted.

The daemon builds nothing itself: a :class:`PartsFactory` (``edge.app``) does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from edge.capture.types import Frame
from edge.config import ConfigError, EdgeConfig, LoadedConfig, changed_sections
from edge.pose.types import PoseResult
from edge.sdnotify import Notifier, watchdog_interval_ns
from edge.stats import LatencyHistogram, RateMeter

logger = logging.getLogger(__name__)

#: How long the loop waits for a frame before doing its housekeeping (seconds).
POLL_S = 0.2
#: Per-frame errors logged in full; after that one in every ERROR_LOG_EVERY.
ERROR_LOG_FIRST = 5
ERROR_LOG_EVERY = 100
#: How long shutdown waits for a capture thread blocked in a read (seconds).
STOP_CAPTURE_TIMEOUT_S = 3.0
#: sysexits.h: data (a model file) is wrong.
EX_DATAERR = 65


class Capture(Protocol):
    def start(self) -> None: ...
    def get(self, timeout_s: float | None = None) -> Frame | None: ...
    def stop(self, timeout_s: float = 10.0) -> None: ...
    @property
    def ended(self) -> bool: ...
    @property
    def frames_dropped(self) -> int: ...
    @property
    def faults(self) -> int: ...


class Pipeline(Protocol):
    def process(self, rgb: Any, timestamp_ns: int) -> PoseResult: ...


class Publisher(Protocol):
    def start(self) -> None: ...
    def publish_result(self, result: PoseResult, frame_index: int, source: str) -> None: ...
    def publish_stats(self, stats: dict[str, Any]) -> None: ...
    def stop(self, clean: bool = True, timeout_s: float | None = None) -> None: ...


class Broker(Protocol):
    def stop(self) -> None: ...


class PartsFactory(Protocol):
    """What the daemon needs built; :class:`edge.app.AppFactory` is the real one."""

    def capture(self, config: EdgeConfig) -> Capture: ...
    def pipeline(self, config: EdgeConfig) -> Pipeline: ...
    def broker(self, loaded: LoadedConfig) -> Broker | None: ...
    def publisher(self, loaded: LoadedConfig) -> Publisher: ...
    def part_stats(self, pipeline: Pipeline, publisher: Publisher) -> dict[str, Any]: ...


class StartupError(Exception):
    """A part could not be built; ``exit_status`` says how the process should end."""

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


@dataclass(slots=True)
class _Parts:
    capture: Capture
    pipeline: Pipeline
    publisher: Publisher
    broker: Broker | None


def state_file_path(config: EdgeConfig, env: Mapping[str, str]) -> Path | None:
    """Where the last stats go: ``stats.state_file``, else ``$STATE_DIRECTORY/stats.json``."""
    if config.stats.state_file:
        return Path(config.stats.state_file)
    state_dir = env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state_dir) / "stats.json" if state_dir else None


def write_state_file(path: Path, record: Mapping[str, Any]) -> None:
    """Write atomically (temp file + rename) so `edge-pose status` never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        # Leave no half-written temp file behind (a full disk stays as full as it was).
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def summary_line(stats: Mapping[str, Any]) -> str:
    """The one-line health summary logged every stats interval and sent as ``STATUS=``."""
    lat = stats.get("latency_ms", {})
    return (
        f"{stats.get('fps', 0.0):.1f} fps, people {stats.get('people', 0)}, "
        f"latency p50 {lat.get('p50_ms', 0.0):.1f} ms p99 {lat.get('p99_ms', 0.0):.1f} ms, "
        f"frames {stats.get('frames_processed', 0)} (dropped {stats.get('frames_dropped', 0)}, "
        f"errors {stats.get('frame_errors', 0)}), source faults {stats.get('source_faults', 0)}, "
        f"mqtt sent {stats.get('pose_sent', 0)} dropped {stats.get('pose_dropped', 0)}"
    )


class Daemon:
    """See the module docstring. ``reload`` returns a freshly loaded config (raises
    :class:`ConfigError` when it is invalid); ``apply_logging`` re-applies log settings."""

    def __init__(
        self,
        loaded: LoadedConfig,
        factory: PartsFactory,
        *,
        reload: Callable[[], LoadedConfig],
        apply_logging: Callable[[EdgeConfig], None] = lambda config: None,
        notifier: Notifier | None = None,
        env: Mapping[str, str] | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.loaded = loaded
        self._factory = factory
        self._reload_config = reload
        self._apply_logging = apply_logging
        self._env = dict(os.environ if env is None else env)
        self._notifier = notifier or Notifier.from_env(self._env)
        self._clock_ns = clock_ns
        self._stop = threading.Event()
        self._exit_status = 0
        self._reload = threading.Event()
        self._parts: _Parts | None = None
        self._started_ns = clock_ns()
        self._watchdog_ns = watchdog_interval_ns(self._env)
        self._last_ping_ns = self._started_ns
        self._good_since_ping = 0
        self._warned_stall = False
        self._ready = False
        self._last_stats_ns = self._started_ns
        self._latency = LatencyHistogram()
        self._rate = RateMeter(window_s=5.0)
        self._frames_processed = 0
        self._frame_errors = 0
        self._last_people = 0
        self._reloads = 0
        self._dropped_base = 0
        self._faults_base = 0
        self._last_stats: dict[str, Any] = {}
        self._state_file_failing = False

    # -- signals -------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def install_signal_handlers(self) -> None:
        def on_stop(signum: int, frame: FrameType | None) -> None:
            logger.info("%s: stopping", signal.Signals(signum).name)
            self._stop.set()
            signal.signal(signum, signal.SIG_DFL)  # a second one ends the process

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self._reload.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    # -- main ------------------------------------------------------------------------

    def run(self) -> int:
        """Build the parts, loop until stopped; the process exit status."""
        if self._stop.is_set():
            logger.info("stopped by a signal before start-up")
            return 0
        try:
            self._parts = self._build_all(self.loaded)
        except (ConfigError, StartupError) as exc:
            if exc.exit_status == 0:
                logger.info("%s", exc)
                return 0
            logger.error("cannot start: %s", exc)
            self._notifier.send(f"STATUS=cannot start: {str(exc).splitlines()[0]}")
            return exc.exit_status
        if self._watchdog_ns:
            logger.info("watchdog: pinging every %.1f s while frames flow", self._watchdog_ns / 1e9)
        try:
            self._loop()
        finally:
            self._shutdown()
        return self._exit_status

    def _loop(self) -> None:
        while not self._stop.is_set():
            parts = self._parts
            assert parts is not None
            frame = parts.capture.get(timeout_s=POLL_S)
            if frame is not None:
                self._process(parts, frame)
            elif parts.capture.ended:
                error = getattr(parts.capture, "error", None)
                if error is not None:
                    logger.error("source failed for good: %s; stopping", error)
                    self._exit_status = 1  # systemd restarts us (Restart=on-failure)
                else:
                    logger.info("source ended (set source.loop = true to repeat a file); stopping")
                self._stop.set()
            if self._reload.is_set() and not self._stop.is_set():
                self._reload.clear()
                self._do_reload()
            self._housekeeping(self._clock_ns())

    def _process(self, parts: _Parts, frame: Frame) -> None:
        start_ns = self._clock_ns()
        try:
            result = parts.pipeline.process(frame.rgb, frame.timestamp_ns)
        except Exception as exc:
            self._frame_errors += 1
            n = self._frame_errors
            if n <= ERROR_LOG_FIRST or n % ERROR_LOG_EVERY == 0:
                logger.error(
                    "frame %d from %s (%dx%d, t=%d ns) failed (error #%d): %s: %s",
                    frame.index,
                    frame.source,
                    frame.width,
                    frame.height,
                    frame.timestamp_ns,
                    n,
                    type(exc).__name__,
                    exc,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
            return
        try:
            parts.publisher.publish_result(result, frame.index, frame.source)
        except Exception as exc:
            self._frame_errors += 1
            logger.error("publishing frame %d failed: %s: %s", frame.index, type(exc).__name__, exc)
        end_ns = self._clock_ns()
        self._latency.record(max(0, end_ns - start_ns))
        self._rate.tick(end_ns)
        self._frames_processed += 1
        self._good_since_ping += 1
        self._last_people = len(result.poses)
        if not self._ready:
            self._ready = True
            elapsed_s = (end_ns - self._started_ns) / 1e9
            logger.info(
                "first frame processed %.2f s after start (%d people); ready",
                elapsed_s,
                self._last_people,
            )
            self._notifier.ready(f"running, first frame after {elapsed_s:.1f} s")
            self._last_ping_ns = end_ns
            self._good_since_ping = 0

    def _housekeeping(self, now_ns: int) -> None:
        if self._watchdog_ns and self._ready and now_ns - self._last_ping_ns >= self._watchdog_ns:
            if self._good_since_ping > 0:
                self._notifier.watchdog()
                self._warned_stall = False
            elif not self._warned_stall:
                self._warned_stall = True
                logger.warning(
                    "no frame processed for %.1f s: withholding the watchdog ping "
                    "(systemd restarts the service if this lasts WatchdogSec)",
                    (now_ns - self._last_ping_ns) / 1e9,
                )
            self._good_since_ping = 0
            self._last_ping_ns = now_ns
        interval_ns = int(self.loaded.config.stats.interval_s * 1e9)
        if now_ns - self._last_stats_ns >= interval_ns:
            self._last_stats_ns = now_ns
            self._emit_stats(now_ns)

    # -- stats -------------------------------------------------------------------------

    def stats(self, now_ns: int) -> dict[str, Any]:
        parts = self._parts
        record: dict[str, Any] = {
            "uptime_s": round((now_ns - self._started_ns) / 1e9, 1),
            "fps": round(self._rate.rate_per_s(now_ns), 2),
            "people": self._last_people,
            "frames_processed": self._frames_processed,
            "frame_errors": self._frame_errors,
            # Latency of the frames since the previous stats record.
            "latency_ms": self._latency.summary().as_dict(),
            "reloads": self._reloads,
            "ready": self._ready,
        }
        if parts is not None:
            record["frames_dropped"] = self._dropped_base + parts.capture.frames_dropped
            record["source_faults"] = self._faults_base + parts.capture.faults
            try:
                record.update(self._factory.part_stats(parts.pipeline, parts.publisher))
            except Exception as exc:
                logger.debug("part stats unavailable: %s", exc)
        return record

    def _emit_stats(self, now_ns: int) -> None:
        record = self.stats(now_ns)
        record["time_unix_s"] = round(time.time(), 3)
        record["node_id"] = self.loaded.config.mqtt.node_id
        record["pid"] = os.getpid()
        self._last_stats = record
        self._latency.reset()
        line = summary_line(record)
        logger.info("stats: %s", line)
        self._notifier.status(line)
        path = state_file_path(self.loaded.config, self._env)
        if path is not None:
            try:
                write_state_file(path, record)
            except OSError as exc:
                if not self._state_file_failing:  # once, not every interval
                    logger.warning(
                        "cannot write the state file %s: %s; retrying every %.0f s",
                        path,
                        exc,
                        self.loaded.config.stats.interval_s,
                    )
                self._state_file_failing = True
            else:
                if self._state_file_failing:
                    logger.info("state file %s written again", path)
                self._state_file_failing = False
        # After the file, so that whoever sees the message can also read the file.
        parts = self._parts
        if parts is not None:
            try:
                parts.publisher.publish_stats(record)
            except Exception as exc:
                logger.warning("publishing stats failed: %s", exc)

    # -- building and reloading -------------------------------------------------------------

    def _build_all(self, loaded: LoadedConfig) -> _Parts:
        config = loaded.config
        capture = self._factory.capture(config)  # checks the source uri before slow work
        broker = self._factory.broker(loaded)
        publisher: Publisher | None = None
        try:
            self._notifier.status("starting: loading and checking the models")
            pipeline = self._factory.pipeline(config)
            if self._stop.is_set():
                raise _StoppedDuringStartupError
            publisher = self._factory.publisher(loaded)
            publisher.start()
            self._notifier.status("starting: opening the source, waiting for the first frame")
            _start_capture(capture, config)
        except _StoppedDuringStartupError:
            if publisher is not None:
                publisher.stop(clean=True)
            if broker is not None:
                broker.stop()
            raise StartupError("stopped by a signal during start-up", 0) from None
        except BaseException:
            if publisher is not None:
                publisher.stop(clean=False)
            if broker is not None:
                broker.stop()
            raise
        return _Parts(capture, pipeline, publisher, broker)

    def _do_reload(self) -> None:
        self._notifier.reloading()
        parts = self._parts
        assert parts is not None
        old = self.loaded
        try:
            new = self._reload_config()
        except ConfigError as exc:
            logger.error("reload: keeping the running config: %s", exc)
            self._notifier.ready("reload failed: config invalid, running with the old one")
            return
        changed = changed_sections(old.config, new.config)
        if new.mqtt_password != old.mqtt_password:
            changed.add("mqtt")
        logger.info("reload: changed sections: %s", ", ".join(sorted(changed)) or "none")
        self._reloads += 1
        steps: list[tuple[tuple[str, ...], Callable[[], None]]] = [
            (("log",), lambda: self._apply_logging(new.config)),
            (("pipeline", "models"), lambda: self._rebuild_pipeline(parts, new)),
            (("mqtt",), lambda: self._restart_mqtt(parts, old, new)),
            (("source",), lambda: self._restart_capture(parts, old, new)),
        ]
        failed: set[str] = set()
        for sections, step in steps:
            if not changed.intersection(sections):
                continue
            try:
                step()
            except (ConfigError, StartupError) as exc:
                failed.update(sections)
                logger.error(
                    "reload: [%s] not applied, still running the old: %s", sections[0], exc
                )
            except Exception:
                failed.update(sections)
                logger.exception("reload: [%s] failed", sections[0])
        # What runs now: the new config, except the sections that could not be applied.
        if failed:
            kept = {name: getattr(old.config, name) for name in failed}
            password = old.mqtt_password if "mqtt" in failed else new.mqtt_password
            new = LoadedConfig(
                new.config.model_copy(update=kept), password, new.path, new.password_origin
            )
        self.loaded = new
        applied = sorted(changed - failed)
        self._notifier.ready(f"reloaded ({', '.join(applied) or 'no changes applied'})")

    def _rebuild_pipeline(self, parts: _Parts, new: LoadedConfig) -> None:
        parts.pipeline = self._factory.pipeline(new.config)
        logger.info("reload: new pipeline built")

    def _restart_capture(self, parts: _Parts, old: LoadedConfig, new: LoadedConfig) -> None:
        """New source; when it cannot start, go back to the old one rather than stop."""
        capture = self._factory.capture(new.config)  # a bad uri raises before anything stops
        self._dropped_base += parts.capture.frames_dropped
        self._faults_base += parts.capture.faults
        parts.capture.stop(timeout_s=STOP_CAPTURE_TIMEOUT_S)
        try:
            _start_capture(capture, new.config)
        except (ConfigError, StartupError) as exc:
            logger.error("reload: the new source cannot start (%s); back to the old one", exc)
            capture = self._factory.capture(old.config)
            _start_capture(capture, old.config)
            parts.capture = capture
            return
        parts.capture = capture
        logger.info("reload: source restarted")

    def _restart_mqtt(self, parts: _Parts, old: LoadedConfig, new: LoadedConfig) -> None:
        o, n = old.config.mqtt, new.config.mqtt
        broker_changed = (o.url == "") != (n.url == "") or (
            n.url == ""
            and (
                (o.embedded_bind, o.embedded_port, o.username)
                != (n.embedded_bind, n.embedded_port, n.username)
                or old.mqtt_password != new.mqtt_password
            )
        )
        publisher = self._factory.publisher(new)  # bad settings raise before anything stops
        parts.publisher.stop(clean=True)
        if broker_changed:
            if parts.broker is not None:
                parts.broker.stop()
                parts.broker = None
            parts.broker = self._factory.broker(new)
        parts.publisher = publisher
        parts.publisher.start()
        logger.info("reload: new publisher for %s", n.url or "the embedded broker")

    def _shutdown(self) -> None:
        self._notifier.stopping()
        parts = self._parts
        if parts is None:
            return
        parts.capture.stop(timeout_s=STOP_CAPTURE_TIMEOUT_S)
        now_ns = self._clock_ns()
        try:
            self._emit_stats(now_ns)
        except Exception as exc:
            logger.warning("final stats failed: %s", exc)
        parts.publisher.stop(clean=True)
        if parts.broker is not None:
            parts.broker.stop()
        logger.info(
            "stopped after %d frames (%d errors)", self._frames_processed, self._frame_errors
        )


class _StoppedDuringStartupError(Exception):
    pass


def _start_capture(capture: Capture, config: EdgeConfig) -> None:
    """Start capture; a source that cannot work as configured is a config error (78),
    a camera that is missing or busy may come back (1: systemd restarts)."""
    from edge.capture.types import CameraBusyError, CameraNotFoundError, SourceError

    try:
        capture.start()
    except (CameraNotFoundError, CameraBusyError) as exc:
        raise StartupError(f"source {config.source.uri!r}: {exc}") from None
    except SourceError as exc:
        raise ConfigError(f"source.uri = {config.source.uri!r}: {exc}") from None
