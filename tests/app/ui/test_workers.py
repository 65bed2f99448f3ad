"""The capture thread on a file (CaptureWorker's file loop), driven as the window drives it: start it on a short video
whose frames carry their own index, release it, take what it hands over from a Handoff. Every frame arrives in
order in 'every' mode, nothing before release(), an end marker (Captured with frame None) after each pass; pause holds
playback, a seek lands on the frame asked for (after the preroll when paused), a loop restarts with a new generation
and waits for release() first, and stop() ends the thread wherever it waits. Media time is checked as a lower bound
only: a slow machine can make a pass longer, never shorter."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.capture.threads import Captured, Handoff
from app.ui.workers import CaptureWorker

pytestmark = pytest.mark.qt

N_FRAMES, FPS = 40, 25.0
WIDTH, HEIGHT, BITS = 192, 64, 6  # six vertical bands: band b is white when bit b of the frame's index is set
QUIET_S = 1.0                     # no hand-over for this long: the worker is waiting (paused, or for release())
TIMEOUT_S = 30.0                  # generous: two shared cores


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 40-frame 25 fps video written here (MPEG-4 part 2: lossy, but black and white bands survive it)."""
    path = tmp_path_factory.mktemp("clip") / "bands.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    band = WIDTH // BITS
    for i in range(N_FRAMES):
        img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        for b in range(BITS):
            if i >> b & 1:
                img[:, b * band:(b + 1) * band] = 255
        writer.write(img)
    writer.release()
    return path


def code(image: np.ndarray) -> int:
    """The index a frame of `clip` shows (each band's middle, away from the edges that compression blurs)."""
    band = WIDTH // BITS
    return sum(1 << b for b in range(BITS) if image[:, b * band + 6:(b + 1) * band - 6].mean() > 127)


@pytest.fixture
def start(qtbot):
    """start(spec, **CaptureWorker options) -> (worker, handoff): a running worker whose source is open (with
    run=False: not started yet); each is stopped at teardown and must have ended."""
    started = []

    def make(spec, run: bool = True, **options) -> tuple[CaptureWorker, Handoff]:
        handoff = Handoff()  # the window's: 'latest' until the worker knows the source is a file
        worker = CaptureWorker(spec, handoff, **options)
        started.append((worker, handoff))
        if run:
            with qtbot.waitSignal(worker.source_opened, timeout=int(TIMEOUT_S * 1000)):
                worker.start()
        return worker, handoff

    yield make
    for worker, handoff in started:
        worker.stop()
        handoff.close()
        assert worker.wait(10_000), "the capture thread did not end"


def take(handoff: Handoff, n: int) -> list[Captured]:
    items = []
    for _ in range(n):
        item = handoff.get(timeout=TIMEOUT_S)
        assert item is not None, f"only {len(items)} of {n} items arrived"
        items.append(item)
    return items


def until_end(handoff: Handoff) -> tuple[list[Captured], Captured]:
    """Every frame up to the end marker of a pass, and the marker."""
    items = []
    while True:
        item = handoff.get(timeout=TIMEOUT_S)
        assert item is not None, f"no end marker after {[i.frame.index for i in items]}"
        if item.frame is None:
            return items, item
        items.append(item)


def until_quiet(handoff: Handoff) -> list[Captured]:
    """What arrives until nothing has for QUIET_S."""
    items = []
    while (item := handoff.get(timeout=QUIET_S)) is not None:
        items.append(item)
    return items


def indices(items: list[Captured]) -> list[int]:
    for item in items:  # the worker's index is the frame the file decoded at that position
        assert code(item.frame.image) == item.frame.index
    return [item.frame.index for item in items]


def test_a_file_waits_for_release_then_hands_over_every_frame_in_order_and_an_end_marker(start, clip, qtbot):
    worker, handoff = start(clip, realtime=False)
    info = worker.info
    assert (info.is_live, info.frame_count, info.fps, info.size) == (False, N_FRAMES, FPS, (WIDTH, HEIGHT))
    assert not handoff.latest  # a file: every frame, never the newest only
    assert handoff.get(timeout=QUIET_S) is None and worker.frames_read == 0  # frame 0 waits for the model

    with qtbot.waitSignal(worker.source_ended, timeout=int(TIMEOUT_S * 1000)):
        worker.release()
        frames, end = until_end(handoff)
    assert indices(frames) == list(range(N_FRAMES))
    assert [f.frame.time_s for f in frames] == pytest.approx([i / FPS for i in range(N_FRAMES)], abs=1e-3)
    assert [f.new_source for f in frames] == [True] + [False] * (N_FRAMES - 1)  # one timeline, from frame 0
    assert {f.generation for f in frames} == {end.generation} == {worker.generation}
    assert end.frame is None
    assert worker.paused and worker.frames_read == N_FRAMES and worker.last_index == N_FRAMES - 1
    assert handoff.get(timeout=QUIET_S) is None  # paused at the end: no second pass, no second marker


def test_pausing_holds_playback_and_play_goes_on_from_the_next_frame(start, clip):
    worker, handoff = start(clip, realtime=True, speed=2.0)  # paced: the pause comes mid-file
    worker.release()
    first = take(handoff, 5)
    worker.set_paused(True)
    held = until_quiet(handoff)  # what was on its way when the pause came
    assert worker.paused and handoff.get(timeout=QUIET_S) is None
    assert len(first) + len(held) < N_FRAMES
    worker.set_paused(False)
    rest, end = until_end(handoff)
    everything = first + held + rest
    assert indices(everything) == list(range(N_FRAMES))  # nothing skipped or repeated across the pause
    assert {f.generation for f in everything} == {end.generation}  # a pause is no jump: the tracks go on


def test_realtime_playback_follows_the_media_time(start, clip):
    """Real time at 4x: frame i is handed over no sooner than (its time - frame 0's time) / 4 after release() (a
    lower bound only: a busy machine makes playback later, never earlier)."""
    speed = 4.0
    worker, handoff = start(clip, realtime=True, speed=speed)
    released = time.monotonic()
    worker.release()
    frames, _ = until_end(handoff)
    assert indices(frames) == list(range(N_FRAMES))
    t0 = frames[0].frame.time_s
    for f in frames:
        assert f.captured_at - released >= (f.frame.time_s - t0) / speed - 1e-3, f.frame.index


def test_a_seek_while_playing_goes_on_from_the_frame_asked_for_with_a_new_generation(start, clip, qtbot):
    worker, handoff = start(clip, realtime=False)
    worker.release()
    before = take(handoff, 3)  # then nobody takes: the worker waits on the full hand-off
    old_generation = worker.generation
    worker.seek(30)
    qtbot.waitUntil(lambda: worker.generation != old_generation, timeout=int(TIMEOUT_S * 1000))
    frames, end = until_end(handoff)
    # the frames still waiting from before the jump are dropped: the pipeline must not analyse them as new
    assert indices(frames) == list(range(30, N_FRAMES))
    assert {f.generation for f in frames} == {end.generation} == {worker.generation}
    assert not any(f.new_source for f in frames)  # the same timeline: a seek is not a new session
    assert indices(before) == [0, 1, 2] and before[0].generation == old_generation


def test_a_seek_while_paused_refills_the_preroll_then_shows_that_frame_and_steps_move_one_frame(start, clip, qtbot):
    worker, handoff = start(clip, realtime=False)
    worker.preroll = 4  # the model's window minus one: it is full at the frame the user inspects
    worker.release()
    take(handoff, 2)
    worker.set_paused(True)
    until_quiet(handoff)

    def jump(request) -> None:
        """Ask for a jump and wait until the worker has made it (the hand-off holds nothing from before it)."""
        generation = worker.generation
        request()
        qtbot.waitUntil(lambda: worker.generation != generation, timeout=int(TIMEOUT_S * 1000))

    jump(lambda: worker.seek(20))
    landed = take(handoff, 5)
    assert indices(landed) == [16, 17, 18, 19, 20]
    assert {f.generation for f in landed} == {worker.generation} and worker.paused

    worker.step(1)
    (forward,) = take(handoff, 1)
    assert indices([forward]) == [21] and forward.generation == landed[0].generation  # the next frame, no jump
    assert worker.last_index == 21

    jump(lambda: worker.step(-1))  # back to 20: a jump, with its preroll
    back = take(handoff, 5)
    assert indices(back) == [16, 17, 18, 19, 20] and {f.generation for f in back} == {worker.generation}

    jump(lambda: worker.seek(2))  # near the start: the preroll is what there is before it
    assert indices(take(handoff, 3)) == [0, 1, 2]
    assert handoff.get(timeout=QUIET_S) is None and worker.paused  # one frame shown, then nothing


def test_a_looping_file_waits_for_release_before_each_pass_and_restarts_with_a_new_generation(start, clip):
    worker, handoff = start(clip, realtime=False, loop=True)
    worker.release()
    first, end1 = until_end(handoff)
    # the window saves the pass's session, starts the next recording, then releases the next pass
    assert handoff.get(timeout=QUIET_S) is None and not worker.paused
    worker.release()
    second, end2 = until_end(handoff)
    assert indices(first) == indices(second) == list(range(N_FRAMES))
    assert {f.generation for f in first} == {end1.generation}
    assert {f.generation for f in second} == {end2.generation} == {worker.generation}
    assert end2.generation != end1.generation
    assert second[0].new_source and not any(f.new_source for f in second[1:])  # each pass is a new session


def test_play_at_the_end_starts_the_file_over_as_a_new_pass(start, clip, qtbot):
    worker, handoff = start(clip, realtime=False)
    with qtbot.waitSignal(worker.source_ended, timeout=int(TIMEOUT_S * 1000)):
        worker.release()
        _, end1 = until_end(handoff)
    assert worker.paused
    with qtbot.waitSignal(worker.source_ended, timeout=int(TIMEOUT_S * 1000)):
        worker.set_paused(False)
        again, end2 = until_end(handoff)
    assert indices(again) == list(range(N_FRAMES))
    assert again[0].new_source and end2.generation != end1.generation


def test_playback_held_back_by_analysis_says_so_in_real_time_only(start, clip, qtbot):
    worker, handoff = start(clip, realtime=True, speed=8.0)
    worker.release()
    qtbot.waitUntil(lambda: worker.frames_read == 4, timeout=int(TIMEOUT_S * 1000))  # the hand-off is full
    qtbot.wait(200)  # nobody takes a frame: the next hand-over waits for the model
    assert handoff.get(timeout=TIMEOUT_S) is not None
    qtbot.waitUntil(lambda: worker.frames_read == 5, timeout=int(TIMEOUT_S * 1000))
    assert worker.waiting_for_analysis
    worker.set_speed(False)  # fast mode is always paced by the model: nothing to say
    assert not worker.waiting_for_analysis


@pytest.mark.parametrize("where", ["before release", "on a full hand-off", "paused", "between looped passes"])
def test_stop_ends_the_thread_wherever_it_waits(start, clip, qtbot, where):
    worker, handoff = start(clip, realtime=False, loop=True)
    errors = []
    worker.error_occurred.connect(errors.append)
    if where != "before release":
        worker.release()
        take(handoff, 1)
    if where == "on a full hand-off":
        qtbot.waitUntil(lambda: worker.frames_read == 5, timeout=int(TIMEOUT_S * 1000))
    elif where == "paused":
        worker.set_paused(True)
        until_quiet(handoff)
    elif where == "between looped passes":
        until_end(handoff)
    read = worker.frames_read
    worker.stop()
    assert worker.wait(5000), f"still running after stop() {where}"
    assert worker.frames_read == read and errors == []


def test_a_missing_file_is_one_error_line_and_the_thread_ends(start, tmp_path, qtbot):
    worker, handoff = start(tmp_path / "gone.mp4", run=False)
    with qtbot.waitSignal(worker.error_occurred, timeout=int(TIMEOUT_S * 1000)) as error:
        worker.start()
    assert worker.wait(5000)
    assert "gone.mp4" in error.args[0] and "not found" in error.args[0] and "\n" not in error.args[0]
    assert worker.info is None and handoff.get(timeout=0.1) is None


@pytest.mark.data
def test_a_truncated_file_hands_over_what_decodes_then_the_end_marker_and_says_it_is_damaged(start, videos,
                                                                                             tmp_path, qtbot):
    data = (videos / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 20])  # index first: the first ~17 of its 472 frames decode
    worker, handoff = start(cut, realtime=False)
    damage = []
    worker.damage_found.connect(damage.append)
    with qtbot.waitSignal(worker.source_ended, timeout=int(TIMEOUT_S * 1000)):
        worker.release()
        frames, end = until_end(handoff)
    n = len(frames)
    assert 5 < n < 472 and [f.frame.index for f in frames] == list(range(n))
    assert end.frame is None and end.generation == frames[0].generation
    qtbot.waitUntil(lambda: bool(damage), timeout=int(TIMEOUT_S * 1000))
    (message,) = damage  # once per source
    assert message.startswith("cut.mp4: ") and f"decoded {n} of the 472 frames" in message
