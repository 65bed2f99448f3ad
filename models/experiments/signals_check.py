"""Sanity check of the blendshapes against the expression model on real faces:

    python -m models.experiments.signals_check [--videos WolfgangLanger_Pexels.mp4 single_face.mp4]

Each video goes through the app's Pipeline frame by frame. For every face row: the model's label and confidence,
and mouthSmile = the mean of mouthSmileLeft and mouthSmileRight. Prints, per video, the mean mouthSmile on frames
labelled happiness with confidence >= 0.8 and on frames labelled neutral, and their difference (the acceptance
asks >= 0.3); also the head-pose ranges and the reliability's mean on each group.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from app.signals.names import BLENDSHAPE_NAMES

SMILE = (BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight"))
CONFIDENT = 0.8


def video_rows(video: Path, weights: Path | None = None) -> list[tuple[str, float, float, float, float]]:
    """(label, confidence, mouthSmile, reliability, |yaw|) for every face row of the video."""
    from app.capture.video import VideoFileSource
    from app.pipeline import Pipeline, PipelineConfig

    out = []
    with VideoFileSource(video) as src, Pipeline(PipelineConfig(weights=weights, device="cpu")) as pipe:
        while (frame := src.read()) is not None:
            r = pipe.process(frame)
            for tid, s in r.signals.items():
                p = r.predictions[tid]
                out.append((p.label, p.confidence, float(np.mean(s.blendshapes[list(SMILE)])), s.reliability,
                            abs(s.yaw)))
    return out


def summarise(rows) -> dict:
    label = np.array([r[0] for r in rows])
    conf, smile, rel = (np.array([r[i] for r in rows], np.float64) for i in (1, 2, 3))
    happy = (label == "happiness") & (conf >= CONFIDENT)
    neutral = label == "neutral"
    return {"rows": len(rows), "happy_n": int(happy.sum()), "neutral_n": int(neutral.sum()),
            "smile_happy": float(smile[happy].mean()) if happy.any() else float("nan"),
            "smile_neutral": float(smile[neutral].mean()) if neutral.any() else float("nan"),
            "reliability_happy": float(rel[happy].mean()) if happy.any() else float("nan"),
            "reliability_neutral": float(rel[neutral].mean()) if neutral.any() else float("nan")}


def main(argv: list[str] | None = None) -> int:
    from app import paths

    p = argparse.ArgumentParser(prog="python -m models.experiments.signals_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", nargs="+", default=["WolfgangLanger_Pexels.mp4", "single_face.mp4"],
                   help="file names under <data>/videos, or paths")
    p.add_argument("--weights", type=Path, default=None)
    args = p.parse_args(argv)
    print("| video | face rows | happiness >= 0.8 | neutral | mouthSmile happy | mouthSmile neutral | difference | "
          "reliability happy / neutral |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    ok = True
    for name in args.videos:
        path = Path(name) if Path(name).is_file() else paths.data_root() / "videos" / name
        s = summarise(video_rows(path, args.weights))
        diff = s["smile_happy"] - s["smile_neutral"]
        ok &= bool(diff >= 0.3)
        print(f"| {path.name} | {s['rows']} | {s['happy_n']} | {s['neutral_n']} | {s['smile_happy']:.3f} | "
              f"{s['smile_neutral']:.3f} | {diff:+.3f} | {s['reliability_happy']:.2f} / "
              f"{s['reliability_neutral']:.2f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
