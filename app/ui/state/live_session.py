"""A live recording's tally in the window, Qt-free: what the headless live recording writes as the JSON's `live`
block (frames received, processed and dropped, capture-to-result latency, the gaps, why it stopped), counted from
the moment the recording starts.

    tally = LiveTally(received_at_start=capture.frames_read)
    tally.push_latency(result.latency_ms)        # the pipeline thread, for each processed frame
    tally.gaps.append(gap)                       # the GUI thread, for each source event with a gap
    block = tally.block(received_now=capture.frames_read, processed=recorder.n_frames, stop="stopped",
                        reconnect_s=10.0)
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from app.capture.camera import SourceGap
from app.runs.live import LatencyStats, LiveResult

ENDED_PREFIX = "the source ended: "


@dataclass
class LiveTally:
    received_at_start: int                        # the capture thread's frame count when the recording started
    started: float = field(default_factory=time.monotonic)
    gaps: list[SourceGap] = field(default_factory=list)
    ended: str | None = None                      # why the source ended on its own, if it did
    _latency: LatencyStats = field(default_factory=LatencyStats)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def push_latency(self, ms: float | None) -> None:
        if ms is not None:
            with self._lock:
                self._latency.push(ms)

    def source_ended(self, message: str) -> None:
        """The source's 'ended' event: its message, without the prefix every such message has."""
        self.ended = message[len(ENDED_PREFIX):] if message.startswith(ENDED_PREFIX) else message

    def block(self, received_now: int, processed: int, stop: str, reconnect_s: float) -> dict:
        """The `live` block, in the headless recording's format (app.runs.live.LiveResult.live_metadata)."""
        # a frame read just before the start may be processed just after it: never fewer received than processed
        received = max(received_now - self.received_at_start, processed)
        with self._lock:
            latency = self._latency.to_json()
        result = LiveResult(source="", exports=[], received=received, processed=processed,
                            dropped=received - processed, latency=latency, gaps=list(self.gaps), stop=stop,
                            ended=self.ended, elapsed_s=time.monotonic() - self.started)
        return result.live_metadata(reconnect_s, None)
