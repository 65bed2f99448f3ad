"""When a file plays and when a recording starts: the window's record/release/loop rules, Qt-free.

A file waits, paused on its first frame, until the model has settled (loaded, or failed: then it plays without
labels), so that frame 0 is analysed and recorded like every other; it records from the start, every frame, and
each pass of a looping file is a session of its own. A camera or stream plays at once and records when the user
asks. A model loaded while a session records starts a new session (a session's metadata names one model).

    rules = PlaybackRules()
    steps = rules.source_opened(live=False)     # -> Steps(start_recording=..., release=...)
    steps = rules.model_loaded(recording=False)

Each event returns the `Steps` the window takes, in the order of its fields.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Steps:
    """What the window does after an event, in this order."""

    stop_recording: bool = False   # save the session being recorded
    start_recording: bool = False  # a new session from the current source and model
    release: bool = False          # let the paused file play


class PlaybackRules:
    def __init__(self) -> None:
        self.model = "loading"            # loading | loaded | failed
        self.source: str | None = None    # None (none open, or opening) | file | live
        self._record_when_ready = False   # a file's session starts once both the model and the source are there

    def _start(self) -> bool:
        if self._record_when_ready and self.model == "loaded" and self.source is not None:
            self._record_when_ready = False
            return True
        return False

    def _release(self) -> bool:
        return self.source == "file" and self.model != "loading"

    def source_closed(self) -> Steps:
        """The source is being replaced (its recording is saved by the caller's stop)."""
        self.source = None
        self._record_when_ready = False
        return Steps()

    def source_opened(self, live: bool) -> Steps:
        self.source = "live" if live else "file"
        if live:
            return Steps()
        self._record_when_ready = True
        return Steps(start_recording=self._start(), release=self._release())

    def model_loaded(self, recording: bool) -> Steps:
        """A model is ready; `recording`: a session of the model before is being recorded."""
        replaced = self.model == "loaded" and recording
        self.model = "loaded"
        if replaced:
            self._record_when_ready = True
        return Steps(stop_recording=replaced, start_recording=self._start(), release=self._release())

    def model_failed(self) -> Steps:
        self.model = "failed"
        self._record_when_ready = False
        return Steps(stop_recording=True, release=self._release())

    def pass_finished(self, loop: bool) -> Steps:
        """Every frame of a pass through the file is processed and recorded (the caller saves that session). A
        looping file records its next pass as a new session and plays on."""
        if not loop:
            return Steps()
        self._record_when_ready = True
        return Steps(start_recording=self._start(), release=True)

    def recording_stopped(self) -> None:
        """The user (or an error) stopped the recording: no session starts by itself until the next source."""
        self._record_when_ready = False

    @property
    def waiting_for_model(self) -> bool:
        """A file is open and paused until the model settles."""
        return self.source == "file" and self.model == "loading"
