"""The window's threads: thin QThreads around the engine's plain classes (STYLE 2). Each `run()` only loops, calls
the engine and emits past-tense signals; errors arrive as `error_occurred(str)`, never as a dead thread.

- CaptureWorker owns one FrameSource. A live source (camera, device, stream) is read here as fast as it delivers,
  wrapped in the engine's ReconnectingSource (a stall or an unplug is retried, `source_event` says so), and each
  frame goes straight into the Handoff's one slot (the newest wins, stale frames are dropped and counted); files
  are read here, paced by media time in real-time mode or free-running in fast mode, with play/pause, seek,
  frame step and loop. Frames go into a Handoff: a live source's newest frame only, but every frame of a file,
  in order (a file is analysed and recorded from frame 0, never dropped: when the model is slower than real time,
  playback waits for it and `waiting_for_analysis` says so). A file starts only once `release()` is called (the
  window calls it when the model is loaded and the recording started), and each pass through a file ends with an
  end marker in the hand-off, after its last frame; a looping file waits for `release()` again before the next pass.
- PipelineWorker owns the Pipeline (built in its own thread: it is not thread-safe), takes frames from the hand-off,
  feeds every result's rows to the SessionLog (so no row depends on the GUI keeping up) and emits
  frame_processed(FrameResult, generation, latency_ms); an end marker becomes pass_finished(generation), once every
  frame before it has been processed and recorded. Without a model it passes frames through unlabelled, so the
  video still plays while the message says how to get one.
- TaskWorker runs one slow call (listing cameras, writing exports, closing a recording) off the GUI thread.
"""
from __future__ import annotations

import itertools
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
from app.capture.threads import Captured, Handoff
from app.ui.state.meters import RateMeter
from app.ui.controllers.sessions import SessionLog

_generations = itertools.count(1)  # shared by all capture workers, so a new source never reuses a generation


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

    WAIT_NOTICE_S = 1.0  # playback counts as waiting for analysis this long after a hand-over had to wait

    def __init__(self, spec, handoff: Handoff, realtime: bool = True, speed: float = 1.0, loop: bool = False,
                 reconnect_s: float | None = None, parent=None):
        super().__init__(parent)
        self.spec = spec
        self.reconnect_s = reconnect_s  # None: app.capture's default
        self._source: ReconnectingSource | None = None
        self.handoff = handoff
        self.input_meter = RateMeter()
        self._cond = threading.Condition()
        self._stop = False
        self._paused = False
        self._realtime = realtime
        self._speed = speed
        self._loop = loop
        self._seek_to: int | None = None
        self._steps = 0                 # pending single-frame steps (+ forward, - back)
        self._pacing_reset = True       # re-anchor media time to wall time before the next paced frame
        self._ended = False             # a file is paused at its end
        self._released = False          # a file's frames flow once the window says the model and recording are ready
        self._last_wait = -1e9          # monotonic time a paced hand-over last had to wait for the pipeline
        self.generation = 0             # of the frames being handed over now
        self.last_index = -1
        self.frames_read = 0            # frames handed to the pipeline
        # frames handed over before a frame the user seeks or steps to while paused, so the FAN window (this many
        # frames + 1) is full there, as it would be in playback; the window sets it from the loaded model
        self.preroll = 0
        self.info: SourceInfo | None = None
        self.setObjectName(f"capture {describe_source(spec)}")

    # -- control (any thread) ----------------------------------------------------------------------------------
    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        source = self._source
        if source is not None:
            source.interrupt()  # a reconnecting source stops retrying

    def release(self) -> None:
        """Let a file's frames flow (at the start, and before each pass of a looping file)."""
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def _wait_released(self) -> bool:
        with self._cond:
            while not self._stop and not self._released:
                self._cond.wait(0.2)
            return not self._stop

    @property
    def waiting_for_analysis(self) -> bool:
        """A file playing in real time is held back by the model (analysis slower than real time) just now."""
        return self._realtime and not self._paused and time.monotonic() - self._last_wait < self.WAIT_NOTICE_S

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            if not paused and self._ended:
                self._seek_to = 0  # play at the end starts over
            self._paused = paused
            self._pacing_reset = True
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def set_speed(self, realtime: bool, speed: float = 1.0) -> None:
        with self._cond:
            self._realtime, self._speed = realtime, max(speed, 0.05)
            self._pacing_reset = True
            self._cond.notify_all()
        if self.info is not None:
            self._set_handoff_policy(self.info.is_live)

    def _set_handoff_policy(self, live: bool) -> None:
        # a camera: newest frame only (drop, never lag); a file: every frame, at any speed (playback waits instead)
        self.handoff.set_latest(live)

    def set_loop(self, loop: bool) -> None:
        self._loop = loop

    def seek(self, index: int) -> None:
        with self._cond:
            self._seek_to = max(0, int(index))
            self._steps = 0
            self._cond.notify_all()

    def step(self, n: int) -> None:
        """Show the next (n=1) or previous (n=-1) frame; pauses playback."""
        with self._cond:
            self._paused = True
            self._steps += n
            self._cond.notify_all()

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
            self._set_handoff_policy(source.is_live)
            self.source_opened.emit(self.info)
            if source.is_live:
                self._run_live(source)
            else:
                self._run_file(source)
        except CaptureError as e:
            self.error_occurred.emit(one_line(e))
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            self.error_occurred.emit(f"capture stopped: {one_line(e)}")
        finally:
            source.close()

    def _new_generation(self) -> int:
        self.generation = next(_generations)
        return self.generation

    def _hand_over(self, frame, generation: int, keep: bool = False, new_source: bool = False) -> bool:
        """Put a frame in the hand-off; in 'every' mode (or with `keep`) wait for room, but keep noticing stop and
        seek."""
        t0 = time.monotonic()
        item = Captured(frame, generation, t0, new_source)
        while not self._stop:
            if self.handoff.put(item, timeout=0.1, keep=keep):
                now = time.monotonic()
                if now - t0 > 0.005 and not keep:  # the pipeline had not taken the frames before: it sets the pace
                    self._last_wait = now
                self.input_meter.push()
                self.frames_read += 1
                self.last_index = frame.index
                return True
            if self.handoff.closed or self._seek_to is not None:
                return False
        return False

    def _send_end(self, generation: int) -> None:
        """The end marker of a pass: the pipeline reports it once every frame before it is processed."""
        item = Captured(None, generation, time.monotonic())
        while not self._stop and not self.handoff.closed:
            if self.handoff.put(item, timeout=0.1, keep=True):
                return

    def _run_live(self, source: ReconnectingSource) -> None:
        """Read as fast as the source delivers; each frame replaces the one waiting in the hand-off's slot (latest
        mode: never a backlog). A lost source is retried inside read() (source_event says so)."""
        generation = self._new_generation()
        first = True
        while not self._stop:
            frame = source.read()
            if frame is None:
                if source.ended is not None and not self._stop:
                    raise CaptureError(f"the source ended: {source.ended}")
                return
            if not self._paused:  # a paused camera keeps reading (no backlog) but shows the frozen frame
                if self._hand_over(frame, generation, new_source=first):
                    first = False

    def _run_file(self, source) -> None:
        generation = self._new_generation()
        new_pass = True  # the next frame handed over starts a new timeline (a new session in the window)
        damage_told = False
        if not self._wait_released():  # the model loads (and the recording starts) before frame 0 is read
            return
        anchor_wall = anchor_media = 0.0
        while True:
            with self._cond:
                # wait while paused with nothing to do
                while not self._stop and self._paused and self._seek_to is None and self._steps == 0:
                    self._cond.wait(0.2)
                if self._stop:
                    return
                seek_to, self._seek_to = self._seek_to, None
                step = 0
                if seek_to is None and self._steps:
                    step = 1 if self._steps > 0 else -1
                    self._steps -= step
            if step < 0:
                seek_to = max(0, self.last_index - 1)
            if seek_to is not None:
                if self._ended and seek_to == 0 and not self._paused:
                    new_pass = True  # play at the end: the file again, from the start, as a new session
                self._ended = False
                # paused, the user inspects one frame: refill the window up to it (playing refills it as it goes)
                start = max(0, seek_to - self.preroll) if self._paused else seek_to
                source.seek(start)
                self.handoff.clear()
                generation = self._new_generation()  # the pipeline forgets tracks from before the jump
                self._pacing_reset = True
                for _ in range(seek_to - start):
                    frame = source.read()
                    if frame is None or not self._hand_over(frame, generation, keep=True, new_source=new_pass):
                        break
                    new_pass = False
                if self._paused and step == 0:
                    step = 1  # a seek while paused shows the frame it landed on
            frame = source.read()
            if frame is None:
                looping = self._loop and source.position > 0
                if looping:
                    with self._cond:
                        self._released = False  # before the marker: the window releases the next pass after it
                self._send_end(generation)
                if looping:
                    if not self._wait_released():
                        return
                    source.seek(0)
                    generation = self._new_generation()
                    new_pass = True
                    self._pacing_reset = True
                    continue
                with self._cond:
                    self._paused = self._ended = True
                if source.damage and not damage_told:
                    damage_told = True
                    self.damage_found.emit(f"{source.name}: {source.damage}")
                self.source_ended.emit()
                continue
            if self._realtime and not self._paused:
                now = time.monotonic()
                if self._pacing_reset:
                    anchor_wall, anchor_media = now, frame.time_s
                    self._pacing_reset = False
                due = anchor_wall + (frame.time_s - anchor_media) / self._speed
                if due - now > 0:
                    with self._cond:  # an interruptible sleep: stop, pause and seek take effect at once
                        self._cond.wait_for(lambda: self._stop or self._seek_to is not None or self._paused,
                                            due - now)
                elif now - due > 0.5:
                    self._pacing_reset = True  # fell behind (a stall): resume from here, never burst to catch up
            if self._stop:
                return
            # paused, only the frames the user asked for are handed over: none of them may be replaced
            if self._hand_over(frame, generation, keep=self._paused, new_source=new_pass):
                new_pass = False


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
