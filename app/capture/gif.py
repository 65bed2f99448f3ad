"""Animated GIFs through Pillow, with the frame delays browsers show."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from app.capture.frame import CaptureError, Frame, FrameSource, check_file


# A GIF frame delay of 0-10 ms means "as fast as possible", which browsers show at 100 ms; do the same so GIF
# timelines match what the user saw.
_GIF_MIN_DELAY_MS, _GIF_DEFAULT_DELAY_MS = 20, 100


# What Pillow raises for a broken image: UnidentifiedImageError (an OSError), truncated data, bad blocks.
_PIL_ERRORS = (OSError, EOFError, ValueError, SyntaxError, IndexError)


class GifSource(FrameSource):
    """An animated GIF through Pillow. Pillow rather than OpenCV because OpenCV builds differ on GIF support
    and Pillow gives each frame's own delay, which makes time_s exact; it also composites frames correctly
    (disposal, transparency, local palettes) when converting to RGB."""

    seekable = True

    def __init__(self, path: str | Path):
        from PIL import Image

        self.path = check_file(Path(path).expanduser(), "GIF file")
        self._name = self.path.name
        try:
            self._im = Image.open(self.path)
            self._im.load()
        except _PIL_ERRORS:
            raise CaptureError(f"cannot read {self.path} as a GIF (not a GIF image, or damaged)") from None
        # One pass over the frames for their delays; a damaged tail ends the GIF where decoding stops.
        self._starts_ms: list[float] = []
        self._damage: str | None = None
        t = 0.0
        while True:
            try:
                self._im.seek(len(self._starts_ms))
                self._im.load()
            except EOFError:  # past the last frame
                break
            except _PIL_ERRORS as e:  # damage: the GIF ends here
                self._damage = f"frame {len(self._starts_ms)} could not be decoded ({type(e).__name__}): damaged GIF"
                break
            self._starts_ms.append(t)
            delay = self._im.info.get("duration") or 0
            t += delay if delay >= _GIF_MIN_DELAY_MS else _GIF_DEFAULT_DELAY_MS
        self._total_ms = t
        if not self._starts_ms:
            raise CaptureError(f"no frame could be decoded from {self.path} (damaged GIF)")
        self._size = (int(self._im.size[0]), int(self._im.size[1]))
        self._next = 0

    @property
    def fps(self) -> float | None:
        """Average rate over the GIF (GIF delays vary per frame; time_s carries the exact ones)."""
        return len(self._starts_ms) / (self._total_ms / 1000.0) if self._total_ms > 0 else None

    @property
    def frame_count(self) -> int:
        return len(self._starts_ms)

    @property
    def damage(self) -> str | None:
        return self._damage

    @property
    def position(self) -> int:
        return self._next

    def read(self) -> Frame | None:
        if self._closed or self._next >= len(self._starts_ms):
            return None
        try:
            self._im.seek(self._next)
            rgb = np.asarray(self._im.convert("RGB"))
        except _PIL_ERRORS:  # decoded in __init__, so only a file changed underneath gets here: end the stream
            return None
        frame = Frame(self._next, self._starts_ms[self._next] / 1000.0, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self._next += 1
        return frame

    def seek(self, index: int) -> None:
        if not self._closed:
            self._next = min(max(0, int(index)), len(self._starts_ms))

    def _close(self) -> None:
        self._im.close()
