"""A live recording's tally in the window: the headless `live` block's keys, counted from the recording's start."""
from app.capture.camera import SourceGap
from app.ui.state.live_session import LiveTally

HEADLESS_KEYS = {"frames_received", "frames_processed", "frames_dropped", "dropped_share", "latency_ms", "session_s",
                 "duration_s", "reconnect_s", "stop", "source_ended", "gaps"}


def test_the_block_has_the_headless_keys_and_never_more_processed_than_received():
    tally = LiveTally(received_at_start=100)
    for ms in (10.0, None, 30.0):  # a frame without a latency (none measured) is not counted
        tally.push_latency(ms)
    block = tally.block(received_now=102, processed=3, stop="stopped", reconnect_s=10.0)
    assert set(block) == HEADLESS_KEYS
    # a frame read just before the start and processed after it: 3 processed of 2 read since, so 3 received
    assert (block["frames_received"], block["frames_processed"], block["frames_dropped"]) == (3, 3, 0)
    assert block["latency_ms"]["n"] == 2 and block["source_ended"] is None and block["gaps"] == []


def test_an_ended_source_is_said_without_its_prefix_and_its_gap_is_kept():
    tally = LiveTally(received_at_start=0)
    tally.source_ended("the source ended: camera 0 stopped delivering frames")
    tally.gaps.append(SourceGap(4.0, None, "camera 0 stopped delivering frames"))
    block = tally.block(received_now=0, processed=0, stop="stopped", reconnect_s=0.0)
    assert block["source_ended"] == "camera 0 stopped delivering frames" and block["dropped_share"] is None
    assert block["gaps"][0]["end_s"] is None
