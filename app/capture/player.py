"""A source's frames into a Handoff on the caller's thread, Qt-free: the core of the window's capture thread.

    player = Player(handoff, realtime=True, speed=1.0, loop=False)
    player.run_file(source, on_ended=..., on_damage=...)   # returns when stopped
    player.seek(120); player.set_paused(True); player.step(-1); player.release(); player.stop()   # any thread

A live source (camera, device, stream) is read as fast as it delivers; each frame replaces the one waiting in the
hand-off's slot (latest mode: never a backlog). A file is read paced by media time in real-time mode or free-running
in fast mode, with play/pause, seek, frame step and loop; every frame of it goes into the hand-off, in order (a file
is analysed and recorded from frame 0, never dropped: when the model is slower than real time, playback waits for it
and `waiting_for_analysis` says so). A file starts only once `release()` is called (when the model is loaded and the
recording started), and each pass ends with an end marker (a `Captured` without a frame) after its last frame; a
looping file waits for `release()` again before the next pass.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from app.capture.frame import CaptureError
from app.capture.threads import Captured, Handoff

_generations = itertools.count(1)  # shared by all players, so a new source never reuses a generation


class Player:
    WAIT_NOTICE_S = 1.0  # playback counts as waiting for analysis this long after a hand-over had to wait

    def __init__(self, handoff: Handoff, realtime: bool = True, speed: float = 1.0, loop: bool = False,
                 on_handed: Callable[[], None] | None = None):
        self.handoff = handoff
        self._on_handed = on_handed     # told of each frame handed over (the window's input rate)
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
        self._live: bool | None = None  # None until the source opens
        self.generation = 0             # of the frames being handed over now
        self.last_index = -1
        self.frames_read = 0            # frames handed to the pipeline
        # frames handed over before a frame the user seeks or steps to while paused, so the FAN window (this many
        # frames + 1) is full there, as it would be in playback; the window sets it from the loaded model
        self.preroll = 0

    # -- control (any thread) ----------------------------------------------------------------------------------
    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

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
        if self._live is not None:
            self.handoff.set_latest(self._live)

    def set_live(self, live: bool) -> None:
        """A camera: newest frame only (drop, never lag); a file: every frame, at any speed (playback waits)."""
        self._live = live
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

    # -- the loops (the capture thread) --------------------------------------------------------------------------
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
                if self._on_handed is not None:
                    self._on_handed()
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

    def run_live(self, source) -> None:
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

    def run_file(self, source, on_ended: Callable[[], None], on_damage: Callable[[str], None]) -> None:
        """Play a file until stopped: `on_ended()` when it reaches its end without looping (paused there),
        `on_damage(message)` once when it ended early (fewer frames than it declares)."""
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
                    on_damage(f"{source.name}: {source.damage}")
                on_ended()
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
