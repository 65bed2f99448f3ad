"""A real live stream on the loopback interface, for the tests and the live benchmark: ffmpeg sends a video at its own
frame rate (`-re`) as MPEG-2 in MPEG-TS over UDP to 127.0.0.1, and the app reads it like a camera (OpenCV's FFmpeg
backend): frames arrive at their own pace whether or not the reader keeps up.

    with LoopbackStream(clip, loops=2) as stream:     # a free UDP port; ffmpeg is stopped on leaving the block
        source = open_source(stream.url)             # udp://127.0.0.1:PORT

`find_ffmpeg()` finds the ffmpeg binary ($FANLIVE_FFMPEG, else PATH); `encode_clip()` makes a clip to stream (a
looped or 2x2-tiled copy of a video, already MPEG-2, so the sender only copies packets) in a folder the caller owns.
The app itself never needs ffmpeg: OpenCV's wheel brings its own FFmpeg libraries to read streams. Qt-free; nothing
runs at import.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

FFMPEG_ENV = "FANLIVE_FFMPEG"
# The MPEG-TS packet size per UDP datagram: 7 TS packets (7 x 188 bytes), what fits a 1500-byte MTU.
_PKT_SIZE = 1316


class FFmpegMissing(RuntimeError):
    """No ffmpeg binary: the message says how to get one."""


def find_ffmpeg() -> str:
    """The ffmpeg to run: $FANLIVE_FFMPEG, else the one on PATH. Raises FFmpegMissing (one line)."""
    given = os.environ.get(FFMPEG_ENV)
    if given:
        if not (Path(given).is_file() and os.access(given, os.X_OK)):
            raise FFmpegMissing(f"${FFMPEG_ENV} is {given}, which is not an executable file")
        return given
    found = shutil.which("ffmpeg")
    if found is None:
        raise FFmpegMissing("ffmpeg is not installed (Debian/Ubuntu: apt-get install ffmpeg; or set "
                            f"${FFMPEG_ENV} to an ffmpeg binary)")
    return found


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def encode_clip(video: Path, out: Path, seconds: float | None = None, tile: int = 1, fps: float | None = None,
                quality: int = 4) -> Path:
    """`video` re-encoded as MPEG-2 in MPEG-TS into `out` (a .ts file): looped to `seconds` when given, tiled
    `tile` x `tile` (the same video in each cell: tile faces in one frame), at `fps` when given. Returns out."""
    cmd = [find_ffmpeg(), "-nostdin", "-loglevel", "error", "-y"]
    if seconds is not None:
        cmd += ["-stream_loop", "-1"]
    cmd += ["-i", str(video)]
    if tile > 1:
        n = tile * tile
        cells = "".join(f"[c{i}]" for i in range(n))
        layout = "|".join(f"{_offset('w0', x)}_{_offset('h0', y)}" for y in range(tile) for x in range(tile))
        cmd += ["-filter_complex", f"[0:v]split={n}{cells};{cells}xstack=inputs={n}:layout={layout}[v]",
                "-map", "[v]"]
    if seconds is not None:
        cmd += ["-t", f"{seconds:g}"]
    if fps is not None:
        cmd += ["-r", f"{fps:g}"]
    cmd += ["-an", "-c:v", "mpeg2video", "-q:v", str(quality), "-f", "mpegts", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"ffmpeg could not encode {video}: {run.stderr.strip()[-300:]}")
    return Path(out)


def _offset(unit: str, k: int) -> str:
    return "0" if k == 0 else "+".join([unit] * k)


class LoopbackStream:
    """ffmpeg sending `clip` in real time to udp://127.0.0.1:`port` (a free one by default): `loops` extra passes
    (-1: forever), cut at `seconds` when given. A clip that is already MPEG-2 in MPEG-TS (encode_clip) is sent as
    it is (`copy`); anything else is encoded on the fly (`-c:v mpeg2video -q:v 4`). `stop()` ends it (also on
    leaving a `with`), `start()` sends it again from the start on the same port."""

    def __init__(self, clip: Path, port: int | None = None, loops: int = 0, seconds: float | None = None,
                 copy: bool | None = None):
        self.clip = Path(clip)
        self.port = int(port) if port is not None else free_udp_port()
        self.loops = int(loops)
        self.seconds = seconds
        self.copy = self.clip.suffix.lower() == ".ts" if copy is None else copy
        self.process: subprocess.Popen | None = None
        self._log = None  # ffmpeg's stderr, in a temp file (a pipe nobody reads could fill and stall it)

    @property
    def url(self) -> str:
        """What a reader opens."""
        return f"udp://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [find_ffmpeg(), "-nostdin", "-loglevel", "error", "-re"]
        if self.loops:
            cmd += ["-stream_loop", str(self.loops)]
        cmd += ["-i", str(self.clip)]
        if self.seconds is not None:
            cmd += ["-t", f"{self.seconds:g}"]
        codec = ["-c:v", "copy"] if self.copy else ["-c:v", "mpeg2video", "-q:v", "4"]
        return cmd + ["-an", *codec, "-f", "mpegts", f"{self.url}?pkt_size={_PKT_SIZE}"]

    def start(self) -> LoopbackStream:
        if self.running:
            raise RuntimeError(f"{self.url} is already being sent")
        if self._log is not None:
            self._log.close()
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self._log)
        return self

    def errors(self) -> str:
        """What ffmpeg has said on stderr (errors only) since the last start."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Until ffmpeg has sent everything (a finite stream); its exit code."""
        if self.process is None:
            raise RuntimeError("not started")
        return self.process.wait(timeout)

    def stop(self) -> None:
        """End the sender (SIGINT, as Ctrl+C would, then SIGKILL if it lingers). Idempotent."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def __enter__(self) -> LoopbackStream:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
