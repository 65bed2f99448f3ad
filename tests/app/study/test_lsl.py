"""Lab Streaming Layer: an inlet on this machine receives what the app's outlets sent; a missing pylsl/liblsl is one
error line."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest

from app.emotions import EMOTIONS
from app.study.lsl import EXPRESSION_CHANNELS, LslUnavailable, load_pylsl
from app.paths import ROOT
from tests.app.timeline.test_recorder import make_rows

try:
    pylsl = load_pylsl()
    _SKIP = None
except LslUnavailable as e:  # only where liblsl truly cannot load on this platform
    pylsl, _SKIP = None, str(e)


def _inlet(source_id: str):
    found = pylsl.resolve_byprop("source_id", source_id, timeout=10)
    assert found, f"no LSL stream {source_id} found on this machine"
    inlet = pylsl.StreamInlet(found[0], max_buflen=10)
    inlet.open_stream(timeout=10)
    return inlet, found[0]


@pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")
def test_an_inlet_receives_the_expressions_and_markers_the_app_sent():
    from app.study.lsl import LslStreams

    rows = make_rows(3, faces=(1, 2))
    with LslStreams(source_id=f"fanlive-test-{uuid.uuid4().hex[:8]}") as streams:
        expr, expr_info = _inlet(f"{streams.source_id}-expressions")
        marks, _ = _inlet(f"{streams.source_id}-markers")
        assert expr_info.channel_count() == len(EXPRESSION_CHANNELS) == 2 + len(EMOTIONS)
        desc = expr.info(timeout=10).desc().child("channels").child("channel")
        labels = []
        while not desc.empty():
            labels.append(desc.child_value("label"))
            desc = desc.next_sibling()
        assert tuple(labels) == EXPRESSION_CHANNELS
        for frame in range(3):
            streams.push_rows(rows[2 * frame: 2 * frame + 2], timestamp=100.0 + frame)
        streams.push_marker("stimulus A", timestamp=101.5)

        got = []
        while len(got) < len(rows):
            sample, ts = expr.pull_sample(timeout=10)
            assert sample is not None, f"received {len(got)} of {len(rows)} samples"
            got.append((sample, ts))
        marker, mts = marks.pull_sample(timeout=10)
    for (sample, ts), r in zip(got, rows):
        assert sample[0] == r.face_id and sample[1] == r.time_s
        assert sample[2:] == pytest.approx(r.probs, abs=1e-12)  # double64: exact
        assert ts == pytest.approx(100.0 + r.frame_index)
    assert marker == ["stimulus A"] and mts == pytest.approx(101.5)


def test_missing_pylsl_is_one_error_line_before_the_model_loads(videos, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        sys.modules["pylsl"] = None  # as if it were not installed: the import raises ImportError
        from app.runs import cli as main
        sys.exit(main.main(["--no-window", "--quiet", "--lsl", "--video", {str(videos / "single_face.mp4")!r},
                            "--export", {str(tmp_path / "x.csv")!r}]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "pylsl" in errors[0] and "pip install pylsl==1.18.6" in errors[0]
    assert not (tmp_path / "x.csv").exists()
