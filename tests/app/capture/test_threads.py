"""app.capture.threads: the hand-off's two modes, the file prefetch and the live latest-frame grabber, on real files
and fake live sources."""
import threading
import time

import numpy as np
import pytest

from app.capture.frame import CaptureError, Frame, FrameSource
from app.capture.threads import Captured, Handoff, LatestFrameGrabber, PrefetchReader, ReadAhead
from app.capture.sources import open_source
from tests.app.capture.test_video import _digest, _sequential


@pytest.mark.data
def test_prefetch_yields_the_same_frames_as_direct_reading(videos):
    path = videos / "single_face.mp4"
    direct = _sequential(path)
    with open_source(path) as src, PrefetchReader(src, maxsize=4) as reader:
        got = [(f.index, f.time_s, _digest(f.image)) for f in reader]
        assert list(reader) == []  # exhausted stays exhausted
        reader._thread.join(2)
        assert not reader._thread.is_alive()
    assert got == direct


@pytest.mark.data
def test_prefetch_close_early_stops_the_thread(videos):
    with open_source(videos / "WolfgangLanger_Pexels.mp4") as src:
        reader = PrefetchReader(src, maxsize=4)
        first = [next(reader) for _ in range(5)]
        time.sleep(0.2)  # let it fill the queue and block on put()
        assert src.position <= 5 + 4 + 1  # bounded: it decodes ahead by the queue size, not the whole file
        reader.close()
        assert not reader._thread.is_alive()
        assert list(reader) == []
    assert [f.index for f in first] == [0, 1, 2, 3, 4]


class _FakeSource(FrameSource):
    """Small frames, as fast as asked; `fail_after` raises like a dying device; `n=None` never ends."""

    def __init__(self, n: int | None, live: bool, fail_after: int | None = None, delay_s: float = 0.0):
        self.is_live = live
        self._name = "fake"
        self._size = (8, 6)
        self.n, self.fail_after, self.delay_s = n, fail_after, delay_s
        self.produced = 0
        self._t0 = time.monotonic()

    @property
    def position(self) -> int:
        return self.produced

    def read(self):
        if self.fail_after is not None and self.produced >= self.fail_after:
            raise CaptureError("camera 7 stopped delivering frames (unplugged?)")
        if self._closed or (self.n is not None and self.produced >= self.n):
            return None
        if self.delay_s:
            time.sleep(self.delay_s)
        img = np.full((6, 8, 3), self.produced % 256, np.uint8)
        frame = Frame(self.produced, time.monotonic() - self._t0, img)
        self.produced += 1
        return frame


def test_prefetch_reraises_errors_from_its_thread():
    reader = PrefetchReader(_FakeSource(n=10, live=False, fail_after=3))
    got = []
    with pytest.raises(CaptureError, match="stopped delivering"):
        for f in reader:
            got.append(f.index)
    assert got == [0, 1, 2]
    reader.close()


def test_threads_refuse_the_wrong_kind_of_source():
    with pytest.raises(ValueError, match="LatestFrameGrabber"):
        PrefetchReader(_FakeSource(n=3, live=True))
    with pytest.raises(ValueError, match="PrefetchReader"):
        LatestFrameGrabber(_FakeSource(n=3, live=False))


def test_grabber_hands_over_only_the_newest_frame():
    src = _FakeSource(n=200, live=True)
    grabber = LatestFrameGrabber(src).start()
    grabber._thread.join(5)  # the source has ended; nobody took anything
    frame = grabber.get(timeout=1)
    assert frame.index == 199 and frame.image[0, 0, 0] == 199
    assert grabber.dropped == 199
    assert grabber.get(timeout=0.1) is None and grabber.finished


def test_grabber_with_a_slow_consumer_skips_stale_frames():
    """The camera's pace against the consumer's is set by the test, not by sleeps: the frames that arrive while the
    consumer is busy replace each other (each one counted), and it gets the newest."""
    ticks = threading.Semaphore(0)

    class PacedSource(_FakeSource):
        def read(self):
            if not ticks.acquire(timeout=30):
                return None
            return super().read()

    src = PacedSource(n=None, live=True)
    seen = []
    with LatestFrameGrabber(src) as grabber:
        produced = 0
        for burst in (1, 4, 1, 3):  # frames the camera delivers while the consumer works on the last one
            produced += burst
            for _ in range(burst):
                ticks.release()
            deadline = time.monotonic() + 30  # liveness only: wait until the burst's newest frame is in the slot
            while not (src.produced == produced and grabber.dropped + grabber.delivered + 1 == produced):
                assert time.monotonic() < deadline
                time.sleep(0.001)
            seen.append(grabber.get(timeout=30).index)
        src.n = src.produced  # the camera ends: the grabber's thread returns
        ticks.release()
    assert seen == [0, 4, 5, 8]
    assert grabber.dropped == 5 and grabber.delivered + grabber.dropped == src.produced == 9


def test_grabber_surfaces_a_read_error():
    grabber = LatestFrameGrabber(_FakeSource(n=None, live=True, fail_after=5)).start()
    with pytest.raises(CaptureError, match="camera 7"):
        for _ in range(10):
            grabber.get(timeout=2)
    assert isinstance(grabber.error, CaptureError)
    grabber.stop()


def test_grabber_stop_ends_the_thread():
    src = _FakeSource(n=None, live=True, delay_s=0.001)
    grabber = LatestFrameGrabber(src).start()
    assert grabber.get(timeout=2) is not None
    grabber.stop()
    assert not grabber.running
    n = src.produced
    time.sleep(0.05)
    assert src.produced == n
    assert threading.active_count() < 50


# ---------------------------------------------------------------------------------------------------------- Handoff
def item(i):
    return Captured(frame=i, generation=0, captured_at=time.monotonic())


def test_latest_mode_keeps_only_the_newest_and_counts_drops():
    h = Handoff(latest=True)
    for i in range(5):
        assert h.put(item(i))
    assert h.get(timeout=0).frame == 4 and h.dropped == 4
    assert h.get(timeout=0.01) is None


def test_every_mode_blocks_the_producer_instead_of_dropping():
    h = Handoff(latest=False, maxsize=2)
    assert h.put(item(0)) and h.put(item(1))
    assert not h.put(item(2), timeout=0.05)  # full: the producer waits
    got = []

    def consume():
        for _ in range(3):
            got.append(h.get(timeout=1).frame)

    t = threading.Thread(target=consume)
    t.start()
    assert h.put(item(2), timeout=1)
    t.join(2)
    assert got == [0, 1, 2] and h.dropped == 0


def test_switching_to_latest_trims_and_close_wakes_everyone():
    h = Handoff(latest=False, maxsize=4)
    for i in range(3):
        h.put(item(i))
    h.set_latest(True)
    assert h.get(timeout=0).frame == 2
    results = []
    t = threading.Thread(target=lambda: results.append(h.get(timeout=5)))
    t.start()
    time.sleep(0.05)
    h.close()
    t.join(1)
    assert results == [None] and not t.is_alive() and not h.put(item(9))


def test_keep_waits_for_the_slot_even_in_latest_mode():
    h = Handoff(latest=True)
    assert h.put(item(0), keep=True)
    assert not h.put(item(1), timeout=0.05, keep=True)  # the slot is taken: a kept frame waits, never replaces
    assert h.get(timeout=0).frame == 0 and h.dropped == 0
    assert h.put(item(1), timeout=0.05, keep=True)


def test_finish_hands_out_what_is_left_then_none():
    h = Handoff(latest=False, maxsize=4)
    h.put(item(0))
    h.put(item(1))
    h.finish()
    assert not h.finished
    assert [h.get(timeout=1).frame, h.get(timeout=1).frame] == [0, 1]
    assert h.get() is None and h.finished  # no wait once finished


def test_read_ahead_raises_after_the_items_before_the_failure_and_close_stops_it():
    def produce():
        yield from range(3)
        raise CaptureError("the disk went away")

    ahead = ReadAhead(produce(), maxsize=2, name="test")
    got = []
    with pytest.raises(CaptureError, match="went away"):
        for x in ahead:
            got.append(x)
    assert got == [0, 1, 2] and list(ahead) == []

    endless = ReadAhead(iter(int, 1), maxsize=2, name="endless")  # 0, 0, 0, ... for ever
    assert next(endless) == 0
    endless.close()
    assert not endless._thread.is_alive() and list(endless) == []

