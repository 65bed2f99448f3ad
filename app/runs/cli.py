"""FAN Live: real-time facial-expression recognition with Frame Attention Networks.

    python main.py                                        the desktop window on the first webcam
    python main.py --video clip.mp4                       the window, replaying a file
    python main.py --video clip.mp4 --export out.csv --no-window     headless replay into an export
    python main.py --camera SOURCE --export out.csv --no-window --duration 60
                                                          headless live recording of a camera or a stream

Exit codes (headless): 0 done; 1 failed (bad input, model or export; for a folder: at least one video failed);
2 bad command line; 3 completed, but an input was damaged (fewer frames decoded than its container declares: the
export holds what was decoded); 128+N interrupted by signal N (130 Ctrl+C, 143 SIGTERM), rows so far exported.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.runs.headless import EXIT_USAGE, run_headless

ATTENTION_ALIASES = {"relation": "fan", "self": "self"}  # --attention's values and the --head each one means
# Inclusive ranges of the numeric options, checked at parse time (before any model loads).
MAX_FACES_RANGE = (1, 16)
WINDOW_RANGE = (1, 1024)
CAMERA_RANGE = (0, 63)
REPEAT_RANGE = (1, 1_000_000)
WORKERS_RANGE = (1, 256)


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


def _study_option(name: str):
    """An argparse type from app.study's parser `name` (imported on use: --help stays light)."""
    def parse(text: str):
        from app.study import options as study

        try:
            return getattr(study, name)(text)
        except study.StudyError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def _gate(text: str) -> str:
    from app.faces.gate import GateConfig

    try:
        GateConfig.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _camera(text: str) -> int | str:
    """--camera: an index (CAMERA_RANGE), a device path (/dev/video2) or a stream URL (rtsp://, udp://, ...)."""
    from app.capture.camera import STREAM_SCHEMES, is_device_path, is_stream_url, mask_url

    text = text.strip()
    if text.lstrip("-").isdigit():
        return _int_in(*CAMERA_RANGE)(text)
    if is_stream_url(text) or is_device_path(text):
        return text
    raise argparse.ArgumentTypeError(
        f"must be a camera index ({CAMERA_RANGE[0]}-{CAMERA_RANGE[1]}), a device path such as /dev/video2, or a "
        f"stream URL ({', '.join(s + '://' for s in STREAM_SCHEMES)}), got {mask_url(text)!r}")


def _seconds_at_least_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other error of the CLI
        self.exit(EXIT_USAGE, f"error: {message} (python main.py --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python main.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, help="a video file (mp4, mov, avi, mkv, gif) or a folder of videos")
    p.add_argument("--camera", type=_camera, default=None, metavar="SOURCE",
                   help="a live source: a camera index (default: the first camera), a device path (/dev/video2) or "
                        "a stream URL (rtsp://, http://.../stream.mjpg, udp://, srt://); in the window, or headless "
                        "with --no-window --export")
    from app.capture.camera import DEFAULT_RECONNECT_S

    p.add_argument("--reconnect", type=_seconds_at_least_zero, default=None, metavar="SECONDS",
                   help="a live source that stalls or vanishes is retried this long before the session ends (default "
                        f"{DEFAULT_RECONNECT_S:g}; 0: never)")
    p.add_argument("--duration", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="headless live recording: stop after this many seconds (default: until Ctrl+C, SIGTERM or the "
                        "source's end)")
    p.add_argument("--export", type=Path, action="append", default=[],
                   help="write the emotion timeline: .csv or .json (repeat for both); a folder for a folder replay")
    p.add_argument("--no-window", action="store_true",
                   help="headless: replay --video as fast as possible, or record --camera live")
    p.add_argument("--weights", type=Path, default=None,
                   help="model: any .onnx or .json card of it (default: the shipped model in weights/)")
    from app.recognition.card import DEVICES, PRECISIONS

    p.add_argument("--device", choices=DEVICES, default=None,
                   help="where the networks run (default auto: CUDA when available, else CPU)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="the embedder graph: auto runs the model card's int8 graph (models.release.quantize, ~2x faster) "
                        "when the embedder runs on the CPU and fp32 on CUDA (the default); fp32 or int8 force one")
    from app.recognition.heads import HEAD_CHOICES

    p.add_argument("--head", choices=HEAD_CHOICES, default=None,
                   help="the head that reads each face's window, among those the model card lists: fan (FAN, "
                        "relation-attention), self, fusion, gru, gru-causal, transformer, ensemble (default: the "
                        "card's)")
    p.add_argument("--attention", dest="attention_alias", choices=tuple(ATTENTION_ALIASES), default=None,
                   help="an alias of --head for FAN's two heads: relation (= --head fan) or self (= --head self); "
                        "an error when it names another head than --head")
    p.add_argument("--window", type=_int_in(*WINDOW_RANGE), default=None,
                   help="frames in the FAN window (default: the card's)")
    from app.faces.detect import DetectorConfig

    p.add_argument("--max-faces", type=_int_in(*MAX_FACES_RANGE), default=None,
                   help=f"faces tracked at once, {MAX_FACES_RANGE[0]}-{MAX_FACES_RANGE[1]} (default "
                        f"{DetectorConfig.max_faces}; in the window: the stored setting)")
    p.add_argument("--no-blendshapes", dest="blendshapes", action="store_false",
                   help="skip the 52 blendshapes (bs_* columns left empty) and MediaPipe's iris refinement they "
                        "need: face detection ~30%% faster; head pose and reliability stay")
    p.add_argument("--raw-probabilities", dest="calibrated", action="store_false",
                   help="export the head's raw probabilities instead of the calibrated ones (the card's fitted "
                        "temperature; the label is the same either way)")
    p.add_argument("--all-frames", action="store_true",
                   help="exports: also a row for each frame without a face (face_id empty, face_found 0), a uniform "
                        "time base as in OpenFace's convention")
    p.add_argument("--repeat", type=_int_in(*REPEAT_RANGE), default=1,
                   help="headless: replay the file N times as one session (frame indices and times go on), "
                        "printing the process's memory after each pass: a soak test")
    study = p.add_argument_group("study (headless; see README, Running a study)")
    study.add_argument("--markers", type=Path, default=None, metavar="FILE.csv",
                       help="event markers, a CSV with columns time_s,label (e.g. a stimulus log): written to "
                            "<export>_events.csv, with per-face epochs around each marker in <export>_epochs.csv")
    study.add_argument("--epoch", type=_study_option("parse_epoch"), default=None, metavar="PRE,POST",
                       help="the epoch around each marker, seconds before and after (default 1,3: -1 s to +3 s)")
    study.add_argument("--summary-every", type=_study_option("parse_summary_every"), default=None, metavar="SECONDS",
                       help="per-face summaries over consecutive intervals of SECONDS, into <export>_summary.csv")
    study.add_argument("--baseline", type=_study_option("parse_baseline"), default=None, metavar="SPEC",
                       help="neutral baseline per face: first:SECONDS, between:START_LABEL,END_LABEL (markers) or "
                            "file:SESSION.csv (a separate recording); adds p_<class>_corrected columns")
    p.add_argument("--lsl", action="store_true",
                   help="stream per-face probabilities and markers to Lab Streaming Layer (LSL) while running")
    p.add_argument("--workers", type=_int_in(*WORKERS_RANGE), default=1,
                   help="headless folder replay: videos processed at once, each in its own process (default 1)")
    p.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                   help="headless folder replay on a Ray cluster: auto (the cluster this machine is part of), local "
                        "(start one here with --workers CPUs) or the head's address (docs/scale.md)")
    p.add_argument("--gate", type=_gate, default=None, metavar="off|detector|stride:K",
                   help="headless: on frames with no tracked face, run the face mesh only when MediaPipe's cheap "
                        "face detector sees a face (detector) or on every K-th frame (stride:K, an entering face "
                        "may be found up to K-1 frames late); default off (app/faces/gate.py, docs/results.md)")
    from app.faces.detect import SMALL_FACES, SMALL_FACES_MODES

    p.add_argument("--small-faces", choices=SMALL_FACES_MODES, default=None,
                   help="find faces too small for the face mesh's own detector: search tiles of the frame and read "
                        "each face on a crop around it (default auto: for frames of "
                        f"{SMALL_FACES.min_frame_side} pixels or more on the longer side; app/faces/detect.py)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true",
                   help="headless: show the native libraries' own log lines (MediaPipe, TensorFlow Lite)")
    return p


def resolve_head(args) -> str | None:
    """--head with its alias --attention folded in (args.head set); the one error line when they disagree."""
    if args.attention_alias is not None:
        meant = ATTENTION_ALIASES[args.attention_alias]
        if args.head is not None and args.head != meant:
            return (f"--attention {args.attention_alias} means --head {meant}, but --head {args.head} was given: "
                    "give one of them")
        args.head = meant
    return None


def headless_only(args) -> list[str]:
    """The options given that only a headless run (--no-window) uses: the window would ignore them."""
    return [name for name, given in (
        ("--repeat", args.repeat != 1), ("--duration", args.duration is not None), ("--all-frames", args.all_frames),
        ("--gate", args.gate is not None), ("--markers", args.markers is not None), ("--epoch", args.epoch is not None),
        ("--summary-every", args.summary_every is not None), ("--baseline", args.baseline is not None),
        ("--workers", args.workers != 1), ("--ray", args.ray is not None)) if given]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings only
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    conflict = resolve_head(args)
    if conflict:
        print(f"error: {conflict}", file=sys.stderr)
        return EXIT_USAGE
    if args.no_window:
        return run_headless(args)
    ignored = headless_only(args)
    if ignored:
        one = len(ignored) == 1
        print(f"error: {', '.join(ignored)} {'is' if one else 'are'} for headless runs (--no-window); the window "
              f"would ignore {'it' if one else 'them'}", file=sys.stderr)
        return EXIT_USAGE
    from app.ui.app import run_app
    from app.ui.state.options import WindowOptions

    return run_app(WindowOptions.from_args(args))


if __name__ == "__main__":
    sys.exit(main())
