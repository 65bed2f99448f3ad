"""FAN Live: real-time facial-expression recognition with Frame Attention Networks.

    python main.py                                        the desktop window on the first webcam
    python main.py --video clip.mp4                       the window, replaying a file
    python main.py --video clip.mp4 --export out.csv --no-window     headless replay into an export

Exit codes (headless): 0 done; 1 failed (bad input, model or export; for a folder: at least one video failed);
2 bad command line; 3 completed, but an input was damaged (fewer frames decoded than its container declares: the
export holds what was decoded); 128+N interrupted by signal N (130 Ctrl+C, 143 SIGTERM), rows so far exported.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import tempfile
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3

# Inclusive ranges of the numeric options, checked at parse time (before any model loads).
MAX_FACES_RANGE = (1, 16)
WINDOW_RANGE = (1, 1024)
CAMERA_RANGE = (0, 63)
REPEAT_RANGE = (1, 1_000_000)


def _int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {value}")
        return value
    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other error of the CLI
        self.exit(EXIT_USAGE, f"error: {message} (python main.py --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python main.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, help="a video file (mp4, mov, avi, mkv, gif) or a folder of videos")
    p.add_argument("--camera", type=_int_in(*CAMERA_RANGE), default=None,
                   help="webcam index for the window (default: the first)")
    p.add_argument("--export", type=Path, action="append", default=[],
                   help="write the emotion timeline: .csv or .json (repeat for both); a folder for a folder replay")
    p.add_argument("--no-window", action="store_true", help="headless replay of --video as fast as possible")
    p.add_argument("--weights", type=Path, default=None,
                   help="model: any .onnx or .json card of it (default: the shipped model in weights/)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                   help="where the networks run (auto: CUDA when available, else CPU)")
    p.add_argument("--attention", choices=["relation", "self"], default=None,
                   help="FAN attention head (default: the model card's)")
    p.add_argument("--window", type=_int_in(*WINDOW_RANGE), default=None,
                   help="frames in the FAN window (default: the card's)")
    p.add_argument("--max-faces", type=_int_in(*MAX_FACES_RANGE), default=4,
                   help=f"faces tracked at once, {MAX_FACES_RANGE[0]}-{MAX_FACES_RANGE[1]} (default 4)")
    p.add_argument("--repeat", type=_int_in(*REPEAT_RANGE), default=1,
                   help="headless: replay the file N times as one session (frame indices and times go on), "
                        "printing the process's memory after each pass: a soak test")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true",
                   help="headless: show the native libraries' own log lines (MediaPipe, TensorFlow Lite)")
    return p


class Interrupted(KeyboardInterrupt):
    """SIGTERM/SIGHUP, handled as Ctrl+C is: the replay stops and what was recorded is exported."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _install_signal_handlers() -> None:
    received: list[int] = []

    def handler(signum, _frame):
        if received:  # the first signal stops the replay; one more must not break the final writes
            return
        received.append(signum)
        raise Interrupted(signum)

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


@contextlib.contextmanager
def _native_logs_hidden(enabled: bool):
    """MediaPipe and TensorFlow Lite write their own log lines (absl 'W0000 ...', 'INFO: Created TensorFlow Lite
    XNNPACK delegate') straight to file descriptor 2, around our one error line. Point fd 2 at a temp file for the
    run and give Python's sys.stderr (errors, warnings, the progress bar) a copy of the real stderr."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    real = os.dup(2)
    sink = tempfile.TemporaryFile()
    os.dup2(sink.fileno(), 2)
    old_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(real), "wb", buffering=0), encoding=old_stderr.encoding,
                                  errors="backslashreplace", line_buffering=True, write_through=True)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stderr = old_stderr
        os.dup2(real, 2)
        os.close(real)
        sink.close()


def _rss_mb() -> float | None:
    """The process's resident memory now (Linux), in MB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def run_headless(args) -> int:
    from app.capture import CaptureError
    from app.card import ModelError
    from app.pipeline import PipelineConfig
    from app.replay import check_inputs, replay
    from app.session import ExportError, format_summary

    if args.video is None:
        print("error: --no-window needs --video FILE (headless mode replays files, not cameras)", file=sys.stderr)
        return EXIT_USAGE
    if args.repeat > 1 and args.video.is_dir():
        print("error: --repeat replays one file, not a folder", file=sys.stderr)
        return EXIT_USAGE
    config = PipelineConfig(weights=args.weights, device=args.device, attention=args.attention,
                            window_length=args.window, max_faces=args.max_faces)
    many = args.video.is_dir()

    def on_pass(k: int, frames: int) -> None:
        rss = _rss_mb()
        print(f"pass {k}/{args.repeat}: {frames} frames, RSS {rss:.1f} MB" if rss is not None
              else f"pass {k}/{args.repeat}: {frames} frames", file=sys.stderr, flush=True)

    def on_result(r) -> None:  # a folder replay reports each video as it finishes
        if r.status == "failed":
            print(f"failed: {r.source.name}: {r.error}", file=sys.stderr, flush=True)
            return
        print(f"{r.source.name}: {r.frames} frames")
        if r.damage:
            print(f"warning: {r.source.name}: {r.damage}; the export holds the frames decoded", file=sys.stderr,
                  flush=True)
        print(format_summary(r.summary))
        for e in r.exports:
            print(f"  wrote {e}")

    _install_signal_handlers()
    with _native_logs_hidden(not args.verbose):
        try:
            from app.card import load_card
            from app.inference import find_default_model

            check_inputs(args.video, args.export)  # a wrong path fails now, not after the model has loaded

            card = load_card(args.weights or find_default_model(), verify_hashes=False)
            if card.extra.get("random_init"):
                print(f"warning: model {card.name!r} has random weights (made for tests): its labels are noise",
                      file=sys.stderr)
            results = replay(args.video, args.export, config, progress=not args.quiet, on_result=on_result,
                             repeat=args.repeat, on_pass=on_pass if args.repeat > 1 else None)
        except (CaptureError, ModelError, ExportError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt as e:
            signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
            print("interrupted: the rows recorded so far were written to the export file(s)", file=sys.stderr)
            return 128 + int(signum)
    if many:
        for status in ("done", "damaged", "failed"):
            names = [r.source.name + (f" ({r.damage or r.error})" if status != "done" else "")
                     for r in results if r.status == status]
            print(f"{status} ({len(names)}): {', '.join(names) if names else '-'}")
    if any(r.status == "failed" for r in results):
        return EXIT_FAILED
    return EXIT_DAMAGED if any(r.status == "damaged" for r in results) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings only
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.no_window:
        return run_headless(args)
    if args.repeat != 1:
        print("error: --repeat is for a headless replay (--no-window)", file=sys.stderr)
        return EXIT_USAGE
    from app.ui.main_window import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
