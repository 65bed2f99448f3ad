"""FAN Live: real-time facial-expression recognition with Frame Attention Networks.

    python main.py                                        the desktop window on the first webcam
    python main.py --video clip.mp4                       the window, replaying a file
    python main.py --video clip.mp4 --export out.csv --no-window     headless replay into an export
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python main.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, help="a video file (mp4, mov, avi, mkv, gif) or a folder of videos")
    p.add_argument("--camera", type=int, default=None, help="webcam index for the window (default: the first)")
    p.add_argument("--export", type=Path, action="append", default=[],
                   help="write the emotion timeline: .csv or .json (repeat for both); a folder for a folder replay")
    p.add_argument("--no-window", action="store_true", help="headless replay of --video as fast as possible")
    p.add_argument("--weights", type=Path, default=None,
                   help="model: any .onnx or .json card of it (default: the shipped model in weights/)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                   help="where the networks run (auto: CUDA when available, else CPU)")
    p.add_argument("--attention", choices=["relation", "self"], default=None,
                   help="FAN attention head (default: the model card's)")
    p.add_argument("--window", type=int, default=None, help="frames in the FAN window (default: the card's)")
    p.add_argument("--max-faces", type=int, default=4, help="faces tracked at once (default 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run_headless(args) -> int:
    from app.capture import CaptureError
    from app.card import ModelError
    from app.pipeline import PipelineConfig
    from app.replay import replay
    from app.session import ExportError, format_summary

    if args.video is None:
        print("error: --no-window needs --video FILE (headless mode replays files, not cameras)", file=sys.stderr)
        return 2
    config = PipelineConfig(weights=args.weights, device=args.device, attention=args.attention,
                            window_length=args.window, max_faces=args.max_faces)
    try:
        from app.card import load_card
        from app.inference import find_default_model

        card = load_card(args.weights or find_default_model(), verify_hashes=False)
        if card.extra.get("random_init"):
            print(f"warning: model {card.name!r} has random weights (made for tests): its labels are noise",
                  file=sys.stderr)
        results = replay(args.video, args.export, config, progress=not args.quiet)
    except (CaptureError, ModelError, ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the rows recorded so far were written to the export file(s)", file=sys.stderr)
        return 130
    for r in results:
        print(f"{r.source.name}: {r.frames} frames")
        print(format_summary(r.summary))
        for e in r.exports:
            print(f"  wrote {e}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings only
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.no_window:
        return run_headless(args)
    from app.ui.main_window import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
