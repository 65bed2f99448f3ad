import threading
import time

from app.capture.handoff import Captured, FrameHandoff


def item(i):
    return Captured(frame=i, generation=0, captured_at=time.monotonic())


def test_latest_mode_keeps_only_the_newest_and_counts_drops():
    h = FrameHandoff(latest=True)
    for i in range(5):
        assert h.put(item(i))
    assert h.get(timeout=0).frame == 4 and h.dropped == 4
    assert h.get(timeout=0.01) is None


def test_every_mode_blocks_the_producer_instead_of_dropping():
    h = FrameHandoff(latest=False, maxsize=2)
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
    h = FrameHandoff(latest=False, maxsize=4)
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
    h = FrameHandoff(latest=True)
    assert h.put(item(0), keep=True)
    assert not h.put(item(1), timeout=0.05, keep=True)  # the slot is taken: a kept frame waits, never replaces
    assert h.get(timeout=0).frame == 0 and h.dropped == 0
    assert h.put(item(1), timeout=0.05, keep=True)
