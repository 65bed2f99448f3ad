"""The status bar's text, from what the window knows (Qt-free: the window only sets its labels)."""
from __future__ import annotations

import html


def status_texts(input_fps: float | None, processing_fps: float, source_fps: float | None, waiting: bool,
                 latency_ms: float | None, model_ms: float | None, info, faces: int,
                 recording_rows: int | None) -> dict[str, str]:
    """Label key -> text (and "provider_tip", the provider label's tooltip when a model is loaded). `info`: the
    loaded model's PipelineInfo (providers, precision, fallback_reason) or None; `recording_rows`: None when not
    recording."""
    out = {"input": f"input {input_fps:.1f} fps" if input_fps is not None else "input -",
           "processing": f"processing {processing_fps:.1f} fps"}
    if waiting:
        pace = f" ({processing_fps / source_fps:.2f}x)" if source_fps else ""
        out["pace"] = f"analysis slower than real time: playback waits for it{pace}"
    else:
        out["pace"] = ""
    out["latency"] = f"latency {latency_ms:.0f} ms ({model_ms:.0f} ms model)" if latency_ms is not None \
        else "latency -"
    if info:
        short = [p.replace("ExecutionProvider", "") for p in info.providers]
        fallback = " (CUDA unavailable)" if info.fallback_reason else ""
        out["provider"] = f"provider {short[0]}{fallback}" if short else "provider ?"
        out["provider_tip"] = ", ".join(info.providers) + f"; {info.precision} embedder" + (
            f"\nCUDA not used: {info.fallback_reason}" if info.fallback_reason else "")
    else:
        out["provider"] = "no model"
    out["faces"] = f"faces {faces}"
    out["recording"] = f"\u25cf REC {recording_rows} rows" if recording_rows is not None else "not recording"
    return out


def running_on(providers) -> str:
    """Where the model runs, for a status message: "on the CPU", "on CUDA", or "" without providers."""
    if not providers:
        return ""
    return "on the CPU" if providers[0].startswith("CPU") else f"on {providers[0].replace('ExecutionProvider', '')}"


def model_summary(info) -> str:
    """The settings dock's rich-text line about the loaded model (a PipelineInfo)."""
    note = info.reliability_note
    return (f"Loaded <b>{info.model}</b><br>{info.card_path}<br>head: {info.head}, window "
            f"{info.window_length} frames<br>providers: {', '.join(info.providers)} ({info.precision} embedder)"
            + (f"<br>reliability: {html.escape(note)}" if note else ""))
