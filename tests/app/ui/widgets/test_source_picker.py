"""The source picker's parsing of a typed source and of the stored last one (no widget needed)."""
import pytest

from app.ui.widgets.source_picker import parse_live_spec, reopenable

pytestmark = pytest.mark.qt


def test_a_typed_source_becomes_what_open_source_takes():
    assert parse_live_spec("2") == 2 and parse_live_spec(3) == 3
    assert parse_live_spec(" rtsp://u:p@cam/live ") == "rtsp://u:p@cam/live"
    assert parse_live_spec("/dev/video2") == "/dev/video2"
    with pytest.raises(ValueError, match="masked password"):
        parse_live_spec("rtsp://u:***@cam/live")
    with pytest.raises(ValueError, match="Not a camera or a stream: clip.mp4"):
        parse_live_spec("clip.mp4")


def test_the_stored_last_source_reopens_only_when_it_can():
    assert reopenable("1") == 1 and reopenable("udp://127.0.0.1:5000") == "udp://127.0.0.1:5000"
    assert reopenable("") is None and reopenable("rtsp://u:***@cam/live") is None and reopenable("notes.txt") is None
