"""Headless runs from the command line's arguments: a replay of a file or a folder into exports, or a live recording,
with one error line for a bad input and the exit codes below (see app.runs.cli for the options).

Exit codes: 0 done; 1 failed (bad input, model or export; for a folder: at least one video failed); 2 bad command
line; 3 completed, but an input was damaged (fewer frames decoded than its container declares: the export holds what
was decoded); 128+N interrupted by signal N (130 Ctrl+C, 143 SIGTERM), rows so far exported.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3


def _native_logs_hidden(enabled: bool):
    """MediaPipe and TensorFlow Lite write their own log lines (absl 'W0000 ...', 'INFO: Created TensorFlow Lite
    XNNPACK delegate') straight to file descriptor 2, around our one error line: dropped for the run, while Python's
    own stderr (errors, warnings, the progress bar) still reaches the terminal."""
    from app.native import captured_fd2

    return captured_fd2(python_to_terminal=True, keep=False) if enabled else contextlib.nullcontext()


def _rss_mb() -> float | None:
    """The process's resident memory now (Linux), in MB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def pipeline_config(args):
    """The run's PipelineConfig from the parsed command line: an option not given (None) keeps PipelineConfig's
    default, so each default is written once, there."""
    from app.pipeline import PipelineConfig

    given = {"weights": args.weights, "device": args.device, "precision": args.precision, "head": args.head,
             "window_length": args.window, "max_faces": args.max_faces, "small_faces": args.small_faces,
             "gate": args.gate}
    return PipelineConfig(all_frames=args.all_frames, blendshapes=args.blendshapes, calibrated=args.calibrated,
                          **{k: v for k, v in given.items() if v is not None})


def _given_study_options(args) -> list[str]:
    return [name for name, v in (("--markers", args.markers), ("--epoch", args.epoch),
                                 ("--summary-every", args.summary_every), ("--baseline", args.baseline))
            if v is not None]


def _summary_intervals_error(args, videos: list[Path]) -> str | None:
    """Why --summary-every cuts a video into too many intervals (from the duration each container declares), if
    it does: an option out of range, found before the model loads."""
    from app.capture.sources import open_source
    from app.study.options import StudyError, check_summary_intervals

    for video in videos if args.summary_every is not None else ():
        with open_source(video) as source:
            duration = (source.frame_count or 0) / (source.fps or 30.0) * args.repeat
        try:
            check_summary_intervals(args.summary_every, duration, video.name)
        except StudyError as e:
            return str(e)
    return None


def _warn_about_model(card, config) -> None:
    """One stderr line for each thing about the model (an app.recognition.card.ModelCard, run with the
    PipelineConfig `config`) that makes its output less than it seems."""
    from app.signals.reliability import ReliabilityModel

    if card.extra.get("random_init"):
        print(f"warning: model {card.name!r} has random weights (made for tests): its labels are noise",
              file=sys.stderr)
    if config.signals:
        _, note = ReliabilityModel.for_model(card.path, card.name)
        if note:
            print(f"warning: {note}", file=sys.stderr)


def _study_inputs(args, given: list[str]):
    """(StudyConfig or None, markers) from the study options, checked before the model loads (StudyError, a
    ValueError: one line)."""
    from app.study.options import EpochWindow, StudyConfig, StudyError, read_markers

    if not given:
        return None, ()
    markers = tuple(read_markers(args.markers)) if args.markers is not None else ()
    baseline = args.baseline
    if baseline is not None and baseline.kind == "between":
        labels = {m.label for m in markers}
        missing = [lab for lab in (baseline.start_label, baseline.end_label) if lab not in labels]
        if missing:
            raise StudyError(f"--baseline between: no marker labelled {', '.join(map(repr, missing))}"
                             f"{'' if args.markers else ' (give --markers)'}")
    return StudyConfig(epoch=args.epoch or EpochWindow(), summary_every_s=args.summary_every,
                       baseline=baseline), markers


def run_headless(args) -> int:
    from app.capture.frame import CaptureError
    from app.capture.video import subfolders
    from app.recognition.card import ModelError
    from app.runs.interrupt import install_stop_handlers, signal_number
    from app.runs.replay import check_inputs, replay
    from app.study.lsl import LslUnavailable
    from app.timeline.files import ExportError
    from app.timeline.summary import format_summary

    if args.camera is not None:
        return run_headless_live(args)
    if args.video is None:
        print("error: --no-window needs --video FILE (a replay) or --camera SOURCE (a live recording)",
              file=sys.stderr)
        return EXIT_USAGE
    for name, given in (("--duration", args.duration), ("--reconnect", args.reconnect)):
        if given is not None:
            print(f"error: {name} is for a live source (--camera), not a video file", file=sys.stderr)
            return EXIT_USAGE
    if args.repeat > 1 and args.video.is_dir():
        print("error: --repeat replays one file, not a folder", file=sys.stderr)
        return EXIT_USAGE
    study_options = _given_study_options(args)
    if study_options and not args.export:
        print(f"error: {', '.join(study_options)} write files beside the export: give --export", file=sys.stderr)
        return EXIT_USAGE
    config = pipeline_config(args)
    many = args.video.is_dir()
    # A folder (or --workers/--ray) goes through app/runs/folder.py (workers, Ray, resume); one file replays here.
    spread = (many or args.workers > 1 or args.ray is not None) and args.repeat == 1
    if args.lsl and (args.workers > 1 or args.ray is not None):
        print("error: --lsl streams from this process: it cannot go with --workers or --ray", file=sys.stderr)
        return EXIT_USAGE
    skipped = []

    def on_pass(k: int, frames: int) -> None:
        from tqdm import tqdm

        rss = _rss_mb()
        # through the progress bar's writer: a line of its own, with the bar redrawn below it
        tqdm.write(f"pass {k}/{args.repeat}: {frames} frames, RSS {rss:.1f} MB" if rss is not None
                   else f"pass {k}/{args.repeat}: {frames} frames", file=sys.stderr)

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
        for note in r.notes:
            print(f"warning: {r.source.name}: {note}", file=sys.stderr, flush=True)

    install_stop_handlers()
    lsl = None
    with _native_logs_hidden(not args.verbose):
        try:
            from app.recognition.card import load_card
            from app.recognition.recognizer import find_default_model

            videos = check_inputs(args.video, args.export)  # a wrong path fails now, not after the model loaded
            if many and (inner := subfolders(args.video)):
                names = ", ".join(p.name for p in inner[:5]) + (f" and {len(inner) - 5} more" if len(inner) > 5 else "")
                print(f"warning: {len(inner)} subfolder{'s' if len(inner) != 1 else ''} of {args.video} not searched "
                      f"(only the videos directly in it are replayed): {names}", file=sys.stderr)
            too_many = _summary_intervals_error(args, videos)
            if too_many:
                print(f"error: {too_many}", file=sys.stderr)
                return EXIT_USAGE
            study, markers = _study_inputs(args, study_options)
            if args.lsl:
                from app.study.lsl import LslStreams

                lsl = LslStreams()  # no liblsl: one error line now, before the model loads

            card = load_card(args.weights or find_default_model(), verify_hashes=False)
            _warn_about_model(card, config)
            if spread:  # a folder (or --workers/--ray): app/runs/folder.py, resumable
                from app.runs.folder import run_folder

                # a stream's listener expects every video: with --lsl, complete ones are not skipped
                run = run_folder(args.video, args.export, config, workers=args.workers, ray=args.ray,
                                 progress=not args.quiet, on_result=on_result, resume=lsl is None, lsl=lsl,
                                 options=dict(study=study, markers=markers) if study is not None else None)
                results, skipped = run.results, run.skipped
            else:
                results = [replay(args.video, args.export, config, progress=not args.quiet, repeat=args.repeat,
                                  on_pass=on_pass if args.repeat > 1 else None, study=study, markers=markers,
                                  lsl=lsl)]
                on_result(results[0])
        except (CaptureError, ModelError, ExportError, ValueError, LslUnavailable) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt as e:
            print("interrupted: the rows recorded so far were written to the export file(s)", file=sys.stderr)
            return 128 + signal_number(e)
        finally:
            if lsl is not None:
                lsl.close()
    if many:
        print(f"skipped ({len(skipped)}, exports already complete): "
              f"{', '.join(r.source.name for r in skipped) if skipped else '-'}")
        for status in ("done", "damaged", "failed"):
            names = [r.source.name + (f" ({r.damage or r.error})" if status != "done" else "")
                     for r in results if r.status == status]
            print(f"{status} ({len(names)}): {', '.join(names) if names else '-'}")
    if any(r.status == "failed" for r in results):
        return EXIT_FAILED
    return EXIT_DAMAGED if any(r.status == "damaged" for r in results) else EXIT_OK


def run_headless_live(args) -> int:
    """python main.py --camera SOURCE --no-window --export out.csv [--duration S]: app/runs/live.py, with a status line."""
    from app.capture.frame import CaptureError
    from app.recognition.card import ModelError
    from app.runs.interrupt import install_stop_handlers, signal_number
    from app.runs.live import LiveConfig, record
    from app.study.lsl import LslUnavailable
    from app.timeline.files import ExportError
    from app.timeline.summary import format_summary

    for name, given in (("--video", args.video is not None), ("--repeat", args.repeat != 1),
                        ("--workers", args.workers != 1), ("--ray", args.ray is not None)):
        if given:
            print(f"error: {name} does not go with --camera (a live recording)", file=sys.stderr)
            return EXIT_USAGE
    if not args.export:
        print("error: a headless live recording needs --export FILE.csv or FILE.json (where its rows go)",
              file=sys.stderr)
        return EXIT_USAGE
    config = pipeline_config(args)
    status = _StatusLine(enabled=not args.quiet)

    def on_event(event) -> None:  # the end of the source is said once, after the exports
        if event.kind != "ended":
            status.message(("warning: " if event.kind == "lost" else "") + event.message)

    install_stop_handlers()
    lsl = None
    with _native_logs_hidden(not args.verbose):
        try:
            from app.recognition.card import load_card
            from app.recognition.recognizer import find_default_model
            from app.runs.live import check_live_inputs

            check_live_inputs(args.camera, args.export)  # before the model loads
            study, markers = _study_inputs(args, _given_study_options(args))
            if args.lsl:
                from app.study.lsl import LslStreams

                lsl = LslStreams()
            card = load_card(args.weights or find_default_model(), verify_hashes=False)
            _warn_about_model(card, config)
            result = record(args.camera, args.export, config, LiveConfig(args.duration, args.reconnect), study=study,
                            markers=markers, lsl=lsl, on_status=status.update, on_event=on_event,
                            on_open=lambda name: status.message(f"opening {name} ..."))
        except (CaptureError, ModelError, ExportError, ValueError, LslUnavailable) as e:
            status.clear()
            print(f"error: {e}", file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt as e:
            status.clear()
            print("interrupted: the rows recorded so far were written to the export file(s)", file=sys.stderr)
            return 128 + signal_number(e)
        finally:
            if lsl is not None:
                lsl.close()
    status.clear()
    lat = result.latency
    share = f", {result.dropped / result.received:.1%}" if result.received else ""
    print(f"{result.source}: {result.elapsed_s:.1f} s, {result.received} frames received, {result.processed} "
          f"processed, {result.dropped} dropped{share}" +
          (f"; latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms" if lat["n"] else ""))
    for gap in result.gaps:
        print(f"  gap at {gap.start_s:.1f} s: " + (f"{gap.duration_s:.1f} s without frames" if gap.end_s is not None
                                                    else "the source did not come back"))
    print(format_summary(result.summary))
    for e in result.exports:
        print(f"  wrote {e}")
    for note in result.notes:
        print(f"warning: {note}", file=sys.stderr)
    if result.stop == "source_ended":
        print(f"the source ended: {result.ended}; the session was exported", file=sys.stderr)
    return EXIT_OK


class _StatusLine:
    """The live status line on stderr: rewritten in place on a terminal, a plain line every LOG_EVERY_S otherwise
    (a log file); messages go on their own line above it."""

    LOG_EVERY_S = 5.0

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._tty = sys.stderr.isatty()
        self._shown = 0  # characters of the status line on screen now
        self._last_log = -1e9

    def update(self, status) -> None:
        if not self.enabled:
            return
        line = status.line()
        if self._tty:
            sys.stderr.write("\r" + line.ljust(self._shown))
            sys.stderr.flush()
            self._shown = len(line)
        elif status.elapsed_s - self._last_log >= self.LOG_EVERY_S:
            self._last_log = status.elapsed_s
            print(line, file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r" + " " * self._shown + "\r")
            sys.stderr.flush()
            self._shown = 0

    def message(self, text: str) -> None:
        self.clear()
        print(text, file=sys.stderr, flush=True)
