"""Window benchmark: the real window plays a file as fast as possible; prints the fps it reached.

    python -m app.ui.tools.bench --video ../shared/data/videos/WolfgangLanger_Pexels.mp4 [--weights W] [--device cpu]

Compare with the headless benchmark on the same machine (`python -m app.tools.bench --video FILE`): the window runs the same
Pipeline on a worker thread, records every row like the headless replay, and redraws at most RENDER_HZ times a
second. Runs offscreen unless a display is set. Settings and sessions go to a temporary folder, never the user's.
Measured, never asserted in a timed test.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from app.recognition.card import DEVICES


def open_window(video: Path, weights: Path | None, device: str, workdir: Path, fast: bool = True):
    """A window on `video` with settings and sessions under `workdir`; (app, window). Shared with the screenshot
    tool. Call before any Qt object exists."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["FANLIVE_SESSIONS_DIR"] = str(workdir / "sessions")
    os.environ.setdefault("GLOG_minloglevel", "2")
    from PySide6.QtCore import QSettings

    from app.ui.widgets.main_window import MainWindow
    from app.ui.app import make_app
    from app.ui.state.options import WindowOptions

    app = make_app()
    store = QSettings(str(workdir / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(WindowOptions(video=video, weights=weights, device=device), store)
    if fast:
        window.set_speed_fast()
    window.show()
    return app, window


def wait_until(app, condition, timeout_s: float) -> bool:
    """Run the Qt event loop (as app.exec() would, no busy polling) until condition() or the timeout."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: (condition() or time.monotonic() > deadline) and loop.quit())
    timer.start(20)
    if not condition():
        loop.exec()
    timer.stop()
    return bool(condition())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.ui.tools.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--weights", type=Path, default=None, help="model (default: the shipped one in weights/)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as d:
        app, window = open_window(args.video, args.weights, args.device, Path(d))
        try:
            if not wait_until(app, lambda: window.pipeline_info is not None or window.model_error, 120):
                print("error: the model did not load in 120 s", file=sys.stderr)
                return 1
            if window.model_error:
                print(f"error: {window.model_error}", file=sys.stderr)
                return 1
            capture, worker = window.capture_worker, window.pipeline_worker
            ended = []
            capture.source_ended.connect(lambda: ended.append(True))
            if not wait_until(app, lambda: worker.frames_processed > 0 or window.error_banner.text, 60) \
                    or not worker.frames_processed:
                print(f"error: no frame was processed ({window.error_banner.text})", file=sys.stderr)
                return 1
            # from the first result on, so the model's warm-up is not counted (app.tools.bench warms up too)
            t0, n0, r0 = time.perf_counter(), worker.frames_processed, window.video.frames_shown
            if not wait_until(app, lambda: ended and worker.frames_processed >= capture.frames_read, args.timeout):
                print("error: timed out", file=sys.stderr)
                return 1
            wall = time.perf_counter() - t0
            frames = worker.frames_processed - n0
            rendered = window.video.frames_shown - r0
            providers = window.pipeline_info.providers
        finally:
            window.close()
    print(f"FAN Live window benchmark: {args.video.name}, as fast as possible, providers {', '.join(providers)}")
    print(f"window fps: {frames / wall:.1f}  ({frames} frames after the first in {wall:.2f} s; "
          f"{rendered / wall:.1f} redraws/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
