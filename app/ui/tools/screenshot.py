"""A screenshot of the real window mid-replay, for the README and the Xvfb test.

    python -m app.ui.tools.screenshot --video ../shared/data/videos/WolfgangLanger_Pexels.mp4 --frame 240 \
        --out assets/screenshot.png [--weights W] [--size 1360x900]

Plays the file (every frame, as fast as possible, so the timeline is complete) up to --frame, pauses there, and
grabs the window: from the X server when the platform is xcb (Xvfb or a desktop: what was really put on screen),
else Qt's own rendering of it. Beside the PNG it writes <out>.json: the frame shown and where the video area is in
the image, so a test can compare that area with the decoded frame. Settings and sessions go to a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from app.ui.tools.bench import open_window, wait_until
from app.recognition.card import DEVICES


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.ui.tools.screenshot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--frame", type=int, default=None, help="frame to pause at (default: the middle of the file); "
                   "the frames already on their way are shown too, so the picture may show a few frames later")
    p.add_argument("--weights", type=Path, default=None, help="model (default: the shipped one in weights/)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--size", default="1360x900", help="window size WxH in pixels")
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory() as d:
        app, window = open_window(args.video, args.weights, args.device, Path(d), fast=True)
        try:
            window.resize(width, height)
            ok = wait_until(app, lambda: window.source_info is not None or window.error_banner.text, 120)
            if not ok or window.source_info is None:
                print(f"error: cannot play {args.video}: {window.error_banner.text}", file=sys.stderr)
                return 1
            count = window.source_info.frame_count or 1
            target = min(args.frame if args.frame is not None else count // 2, count - 1)
            capture = window.capture_worker
            if not wait_until(app, lambda: window.latest is not None and window.latest.frame.index >= target,
                              args.timeout):
                print(f"error: frame {target} not reached in {args.timeout:.0f} s", file=sys.stderr)
                return 1
            window.toggle_play()  # pause; a frame or two may still be in flight: show the one shown last
            wait_until(app, lambda: window.latest.frame.index == capture.last_index, 30)
            window.notice_banner.hide()  # "recording to <temp folder>": not worth a place in a picture
            window.render()
            wait_until(app, lambda: False, 0.5)  # let the window system expose and paint everything
            shot = grab(app, window)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            if not shot.save(str(args.out)):
                print(f"error: could not write {args.out}", file=sys.stderr)
                return 1
            rect = window.video.frame_rect()
            top_left = window.video.mapTo(window, rect.topLeft().toPoint())
            ratio = shot.width() / max(1, window.width())  # device pixels per window pixel
            meta = {"video": str(args.video), "frame_index": window.latest.frame.index,
                    "platform": app.platformName(), "image_size": [shot.width(), shot.height()],
                    "video_rect": [round(top_left.x() * ratio), round(top_left.y() * ratio),
                                   round(rect.width() * ratio), round(rect.height() * ratio)],
                    "faces": len(window.video.faces)}
            args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
        finally:
            window.close()
    print(f"wrote {args.out} (frame {meta['frame_index']}, {meta['platform']})")
    return 0


def grab(app, window):
    """The window as the screen shows it (xcb: read back from the X server), else as Qt renders it."""
    if app.platformName() == "xcb":
        screen = window.screen() or app.primaryScreen()
        time.sleep(0.1)
        return screen.grabWindow(window.winId()).toImage()
    return window.grab().toImage()


if __name__ == "__main__":
    sys.exit(main())
