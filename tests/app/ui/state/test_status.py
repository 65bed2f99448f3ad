"""The status bar's text, built without Qt from what the window knows."""
from types import SimpleNamespace

from app.ui.state.status import model_summary, running_on, status_texts


def _info(providers=("CUDAExecutionProvider", "CPUExecutionProvider"), fallback=None, reliability_note=None):
    return SimpleNamespace(providers=list(providers), precision="fp32", fallback_reason=fallback, model="m",
                           card_path="/w/m.json", head="relation", window_length=16, reliability_note=reliability_note)


def test_a_running_model_with_a_recording():
    texts = status_texts(input_fps=30.0, processing_fps=15.0, source_fps=30.0, waiting=True, latency_ms=40.2,
                         model_ms=12.0, info=_info(), faces=2, recording_rows=120)
    assert texts["input"] == "input 30.0 fps" and texts["processing"] == "processing 15.0 fps"
    assert texts["pace"] == "analysis slower than real time: playback waits for it (0.50x)"
    assert texts["latency"] == "latency 40 ms (12 ms model)" and texts["provider"] == "provider CUDA"
    assert texts["faces"] == "faces 2" and texts["recording"] == "\u25cf REC 120 rows"


def test_nothing_loaded_and_a_cuda_fallback():
    idle = status_texts(input_fps=None, processing_fps=0.0, source_fps=None, waiting=False, latency_ms=None,
                        model_ms=None, info=None, faces=0, recording_rows=None)
    assert (idle["input"], idle["pace"], idle["latency"], idle["provider"], idle["recording"]) == (
        "input -", "", "latency -", "no model", "not recording")
    assert "provider_tip" not in idle
    cpu = status_texts(input_fps=None, processing_fps=0.0, source_fps=None, waiting=False, latency_ms=None,
                       model_ms=None, info=_info(("CPUExecutionProvider",), "libcudnn missing"), faces=0,
                       recording_rows=None)
    assert cpu["provider"] == "provider CPU (CUDA unavailable)" and "libcudnn missing" in cpu["provider_tip"]


def test_where_the_model_runs_and_its_summary():
    assert running_on(["CPUExecutionProvider"]) == "on the CPU" and running_on(["CUDAExecutionProvider"]) == "on CUDA"
    assert running_on([]) == ""
    assert "head: relation, window 16 frames" in model_summary(_info())
    assert "reliability" not in model_summary(_info())
    assert "reliability: fit made for a &lt;b&gt;" in model_summary(_info(reliability_note="fit made for a <b>"))
