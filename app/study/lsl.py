"""Live streaming to lab software with Lab Streaming Layer (pylsl): the expression stream and the markers.

Two outlets, found on the local network by any LSL client (LabRecorder, an EEG suite, an inlet in Python):

* `FANLive-Expressions` (type `Expressions`, irregular rate, double64): one sample per face per processed frame,
  channels `face_id, media_time_s, p_anger ... p_neutral` (EMOTIONS order); the LSL timestamp is the LSL clock
  (`pylsl.local_clock()`) when the frame's result was ready, so it lines up with other streams on that machine.
* `FANLive-Markers` (type `Markers`, irregular rate, one string channel): each marker's label, when it is added
  (the window) or when the replay reaches its time (a `--markers` file).

The pylsl wheel bundles liblsl (Linux x86_64 with glibc >= 2.35, Windows, macOS); nothing else to install.
Elsewhere a user installs liblsl (https://github.com/sccn/liblsl/releases) and points `PYLSL_LIB` at it;
`open_streams` then fails with one line saying so (`LslUnavailable`). Qt-free; pylsl is imported on first use only.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from types import ModuleType

from app.emotions import EMOTIONS

EXPRESSION_STREAM = "FANLive-Expressions"
MARKER_STREAM = "FANLive-Markers"
EXPRESSION_CHANNELS: tuple[str, ...] = ("face_id", "media_time_s", *(f"p_{e}" for e in EMOTIONS))
INSTALL_HINT = ("pip install pylsl==1.18.6 (its wheel bundles liblsl on Linux x86_64 with glibc >= 2.35, Windows "
                "and macOS); elsewhere install liblsl from https://github.com/sccn/liblsl/releases and set "
                "PYLSL_LIB to its file")


class LslUnavailable(RuntimeError):
    """pylsl or its liblsl cannot be loaded: one line with what to install."""


def load_pylsl() -> ModuleType:
    """pylsl, with its native library loaded. Raises LslUnavailable (one line) when either is missing."""
    try:
        import pylsl
        pylsl.library_version()  # loads liblsl now, not at the first push
    except ImportError as e:
        raise LslUnavailable(f"LSL streaming needs pylsl ({e}): {INSTALL_HINT}") from None
    except (RuntimeError, OSError) as e:  # pylsl found no liblsl (RuntimeError), or one that does not load
        reason = " ".join(str(e).split())
        raise LslUnavailable(f"LSL streaming needs liblsl, which did not load ({reason}): {INSTALL_HINT}") from None
    return pylsl


class LslStreams:
    """The two outlets of one FAN Live process. `push_rows(rows)` per processed frame, `push_marker(label)` per
    marker; `close()` (or a with block) takes them off the network."""

    def __init__(self, source_id: str | None = None):
        lsl = load_pylsl()
        self._lsl = lsl
        sid = source_id or f"fanlive-{os.getpid()}"
        info = lsl.StreamInfo(EXPRESSION_STREAM, "Expressions", len(EXPRESSION_CHANNELS), lsl.IRREGULAR_RATE,
                              "double64", f"{sid}-expressions")
        channels = info.desc().append_child("channels")
        for name in EXPRESSION_CHANNELS:
            ch = channels.append_child("channel")
            ch.append_child_value("label", name)
            ch.append_child_value("unit", "s" if name == "media_time_s" else "id" if name == "face_id" else "probability")
        info.desc().append_child_value("labels", ",".join(EMOTIONS))
        markers = lsl.StreamInfo(MARKER_STREAM, "Markers", 1, lsl.IRREGULAR_RATE, "string", f"{sid}-markers")
        self.source_id = sid
        self._expressions = lsl.StreamOutlet(info)
        self._markers = lsl.StreamOutlet(markers)

    def push_rows(self, rows: Iterable, timestamp: float | None = None) -> int:
        """One sample per row (TimelineRow: one face on one frame), all stamped with the same LSL time."""
        if self._expressions is None:
            return 0
        ts = self._lsl.local_clock() if timestamp is None else timestamp
        n = 0
        for r in rows:
            if r.face_id is None or not r.probs:  # a frame without a face (--all-frames): nothing to stream
                continue
            self._expressions.push_sample([float(r.face_id), float(r.time_s), *map(float, r.probs)], ts)
            n += 1
        return n

    def push_marker(self, label: str, timestamp: float | None = None) -> None:
        if self._markers is None:
            return
        ts = self._lsl.local_clock() if timestamp is None else timestamp
        self._markers.push_sample([str(label)], ts)

    def have_consumers(self) -> bool:
        return any(o is not None and o.have_consumers() for o in (self._expressions, self._markers))

    def close(self) -> None:
        """Take both outlets off the network (pylsl destroys an outlet with its last reference); pushes after this
        are ignored."""
        self._expressions = self._markers = None

    def __enter__(self) -> LslStreams:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
