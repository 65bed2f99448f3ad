"""The window's threads: thin QThreads around the engine's plain classes (STYLE 2). Each `run()` only loops, calls
the engine and emits past-tense signals; errors arrive as `error_occurred(str)`, never as a dead thread.

- CaptureWorker owns one FrameSource and runs the engine's Player on it (app/capture/player.py: the file and live
  loops, pacing, seek, step, loop and the release gate, all Qt-free); a live source is wrapped in the engine's
  ReconnectingSource (a stall or an unplug is retried, `source_event` says so). Frames go into a Handoff: a live
  source's newest frame only, but every frame of a file, in order; each pass through a file ends with an end marker.
- PipelineWorker owns the Pipeline (built in its own thread: it is not thread-safe), takes frames from the hand-off,
  feeds every result's rows to the SessionLog (so no row depends on the GUI keeping up) and emits
  frame_processed(FrameResult, generation, latency_ms); an end marker becomes pass_finished(generation), once every
  frame before it has been processed and recorded. Without a model it passes frames through unlabelled, so the
  video still plays while the message says how to get one.
- TaskWorker runs one slow call (listing cameras, writing exports, closing a recording) off the GUI thread.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass

from PySide6.QtCore import QThread, Signal

from app.capture.frame import CaptureError
from app.capture.camera import ReconnectingSource, describe_source, mask_url
from app.capture.sources import open_source
from app.recognition.card import ModelError
from app.pipeline import FrameResult, Pipeline, PipelineConfig
from app.timeline.files import ExportError
from app.capture.player import Player
from app.capture.threads import Handoff
from app.ui.state.meters import RateMeter
from app.ui.controllers.sessions import SessionLog


def one_line(e: BaseException) -> str:
    """An error as one line for a banner, any URL's password masked."""
    text = mask_url(" ".join(str(e).split()))
    return text or type(e).__name__


@dataclass(frozen=True)
class SourceInfo:
    spec: object             # what open_source was given: a camera index, a device path, a URL or a file path
    name: str
    is_live: bool
    fps: float | None
    frame_count: int | None
    size: tuple[int, int]


class CaptureWorker(QThread):
    source_opened = Signal(object)    # SourceInfo
    source_event = Signal(object)     # app.capture.camera.SourceEvent: a live source was lost, came back, or ended
    source_ended = Signal()           # a file reached its end (and is not looping): the worker pauses there
    damage_found = Signal(str)        # a file ended early (fewer frames than it declares): why, once per source
    error_occurred = Signal(str)

    def __init__(self, spec, handoff: Handoff, realtime: bool = True, speed: float = 1.0, loop: bool = False,
                 reconnect_s: float | None = None, parent=None):
        super().__init__(parent)
        self.spec = spec
        self.reconnect_s = reconnect_s  # None: app.capture's default
        self._source: ReconnectingSource | None = None
        self.handoff = handoff
        self.input_meter = RateMeter()
        # the loops and every control live in the Qt-free player (app/capture/player.py); this thread runs it
        self.player = Player(handoff, realtime, speed, loop, on_handed=self.input_meter.push)
        self.info: SourceInfo | None = None
        self.setObjectName(f"capture {describe_source(spec)}")

    # -- control (any thread): the player's ------------------------------------------------------------------
    def stop(self) -> None:
        self.player.stop()
        source = self._source
        if source is not None:
            source.interrupt()  # a reconnecting source stops retrying

    def release(self) -> None:
        self.player.release()

    def set_paused(self, paused: bool) -> None:
        self.player.set_paused(paused)

    def set_speed(self, realtime: bool, speed: float = 1.0) -> None:
        self.player.set_speed(realtime, speed)

    def set_loop(self, loop: bool) -> None:
        self.player.set_loop(loop)

    def seek(self, index: int) -> None:
        self.player.seek(index)

    def step(self, n: int) -> None:
        self.player.step(n)

    @property
    def paused(self) -> bool:
        return self.player.paused

    @property
    def waiting_for_analysis(self) -> bool:
        return self.player.waiting_for_analysis

    @property
    def generation(self) -> int:
        return self.player.generation

    @property
    def last_index(self) -> int:
        return self.player.last_index

    @property
    def frames_read(self) -> int:
        return self.player.frames_read

    @property
    def preroll(self) -> int:
        return self.player.preroll

    @preroll.setter
    def preroll(self, frames: int) -> None:
        self.player.preroll = frames

    # -- thread ------------------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            source = open_source(self.spec)
        except CaptureError as e:
            self.error_occurred.emit(one_line(e))
            return
        except Exception as e:  # noqa: BLE001 - anything else from a decoder must reach the user, not kill the thread
            self.error_occurred.emit(f"cannot open {describe_source(self.spec)}: {one_line(e)}")
            return
        if source.is_live:
            source = self._source = ReconnectingSource(
                source, lambda left: open_source(self.spec, timeout_s=left), self.reconnect_s,
                on_event=self.source_event.emit)
        try:
            self.info = SourceInfo(self.spec, source.name, source.is_live, source.fps, source.frame_count,
                                   source.size)
            self.player.set_live(source.is_live)
            self.source_opened.emit(self.info)
            if source.is_live:
                self.player.run_live(source)
            else:
                self.player.run_file(source, on_ended=self.source_ended.emit, on_damage=self.damage_found.emit)
        except CaptureError as e:
            self.error_occurred.emit(one_line(e))
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            self.error_occurred.emit(f"capture stopped: {one_line(e)}")
        finally:
            source.close()


class PipelineWorker(QThread):
    frame_processed = Signal(object, int, float)  # FrameResult, generation, end-to-end latency (ms)
    pass_finished = Signal(int)                   # generation: every frame of a file's pass is processed and recorded
    recording_failed = Signal(str)                # the recording could not go on (its journal failed): why
    pipeline_loaded = Signal(object)              # PipelineInfo
    pipeline_failed = Signal(str)                 # no model: the message says why and what to do
    error_occurred = Signal(str)

    def __init__(self, config: PipelineConfig, handoff: Handoff, session_log: SessionLog, parent=None):
        super().__init__(parent)
        self.handoff = handoff
        self.session_log = session_log
        self.process_meter = RateMeter()
        self._config: PipelineConfig | None = config
        self._lock = threading.Lock()
        self._stop = False
        self.pipeline: Pipeline | None = None
        self.frames_processed = 0
        self.setObjectName("pipeline")

    def configure(self, config: PipelineConfig) -> None:
        """Rebuild the pipeline with `config` before the next frame (settings changed)."""
        with self._lock:
            self._config = config

    def stop(self) -> None:
        self._stop = True

    def run(self) -> None:
        generation = None
        last_error = ""
        try:
            while not self._stop:
                with self._lock:
                    config, self._config = self._config, None
                if config is not None:
                    self._load(config)
                    generation = None
                item = self.handoff.get(timeout=0.1)
                if item is None:
                    continue
                if item.frame is None:
                    self.pass_finished.emit(item.generation)
                    continue
                try:
                    if self.pipeline is None:
                        result = FrameResult(frame=item.frame, faces=[], predictions={})
                    else:
                        if item.new_source:  # a new timeline: nothing carried over, face ids from 1 (as headless)
                            self.pipeline.reset()
                            self.pipeline.tracker.reset(restart_ids=True)
                        elif generation is not None and item.generation != generation:
                            self.pipeline.reset()  # a seek: old tracks are meaningless
                        result = self.pipeline.process(item.frame)
                    generation = item.generation
                    try:
                        self.session_log.add_result(result)
                    except ExportError as e:  # the frame itself is fine: it is still shown
                        self.recording_failed.emit(one_line(e))
                except Exception as e:  # noqa: BLE001 - one bad frame must not end the session
                    msg = f"processing failed on frame {item.frame.index}: {one_line(e)}"
                    if msg != last_error:  # the same failure on every frame is reported once
                        traceback.print_exc()
                        self.error_occurred.emit(msg)
                        last_error = msg
                    continue
                self.frames_processed += 1
                self.process_meter.push()
                latency = result.latency_ms if result.latency_ms is not None else \
                    (time.monotonic() - item.captured_at) * 1e3
                self.frame_processed.emit(result, item.generation, latency)
        finally:
            if self.pipeline is not None:
                self.pipeline.close()
                self.pipeline = None

    def _load(self, config: PipelineConfig) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None
        try:
            pipeline = Pipeline(config)
        except ModelError as e:
            self.pipeline_failed.emit(one_line(e))
            return
        except Exception as e:  # noqa: BLE001 - e.g. onnxruntime refusing a graph: say so, keep the video running
            traceback.print_exc()
            self.pipeline_failed.emit(f"the model could not be loaded: {one_line(e)}")
            return
        self.pipeline = pipeline
        self.pipeline_loaded.emit(pipeline.info())


class TaskWorker(QThread):
    """One call off the GUI thread: `task_finished(result)` or `error_occurred(message)`."""

    task_finished = Signal(object)
    error_occurred = Signal(str)

    def __init__(self, fn, *args, parent=None, **kwargs):
        super().__init__(parent)
        self._call = (fn, args, kwargs)

    def run(self) -> None:
        fn, args, kwargs = self._call
        try:
            result = fn(*args, **kwargs)
        except (ExportError, ValueError, OSError, CaptureError) as e:
            self.error_occurred.emit(one_line(e))
            return
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            self.error_occurred.emit(one_line(e))
            return
        self.task_finished.emit(result)
