"""Clips the benchmark and the tests build at run time with ffmpeg from the shared videos (never committed):

    long_clip(videos, out)            a long recording: title cards between the shared clips, 640x360 at 24 fps
    grid_clip(video, out, tile=3)     tile x tile copies of a clip in one 1920x1080 frame (tile**2 faces), each cell
                                      started at its own offset so that no two faces move alike

    head_clip(video, out, frames)     a video's first frames

They write H.264 (.mp4) into a path the caller owns and return it. The title cards are plain coloured frames with a
line of text (ffmpeg's drawtext; a box instead where ffmpeg lacks a font): the empty stretches of a real recording,
where no face is to be found. Nothing runs at import; ffmpeg is app.tools.loopback.find_ffmpeg()'s. Where there is no
ffmpeg (a lent GPU machine's image), grid_clip and head_clip compose the frames with OpenCV and write MPEG-4 part 2
through OpenCV's own FFmpeg libraries instead; long_clip needs ffmpeg.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np

from app.tools.loopback import FFmpegMissing, find_ffmpeg

# The long clip's parts, in order: a shared video's file name, or a title card's seconds. About a quarter of its
# ~2,600 frames show a face (WolfgangLanger's 472, single_face's 58, and the parts of face_noface and noface_face
# with a face); the rest are title cards and sky.
LONG_PARTS: tuple[str | float, ...] = (
    12.0, "WolfgangLanger_Pexels.mp4", 12.0, "no_face.mp4", 12.0, "face_noface.mov", 12.0, "noface_face.mov", 12.0,
    "single_face.mp4", 12.0)
LONG_SIZE, LONG_FPS = (640, 360), 24
GRID_SIZE = (1920, 1080)


def _run(cmd: list[str], what: str) -> None:
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        raise RuntimeError(f"ffmpeg could not make {what}: {run.stderr.strip()[-400:]}")


def _has_drawtext(ffmpeg: str) -> bool:
    probe = subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                            "color=c=black:s=64x64:d=0.1", "-vf", "drawtext=text=x", "-f", "null", "-"],
                           capture_output=True, text=True, timeout=60)
    return probe.returncode == 0


def long_clip(videos: Path, out: Path, parts: tuple[str | float, ...] = LONG_PARTS,
              size: tuple[int, int] = LONG_SIZE, fps: int = LONG_FPS) -> Path:
    """The shared videos in `videos` and title cards of so many seconds, in the order of `parts`, each scaled to
    `size` (letterboxed: no face is stretched) at `fps`, concatenated into `out` (.mp4). Returns out."""
    ffmpeg = find_ffmpeg()
    w, h = size
    text = _has_drawtext(ffmpeg)
    cmd = [ffmpeg, "-nostdin", "-loglevel", "error", "-y"]
    chains = []
    for i, part in enumerate(parts):
        if isinstance(part, str):
            cmd += ["-i", str(Path(videos) / part)]
            chains.append(f"[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease,"
                          f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,fps={fps},setsar=1,format=yuv420p[p{i}]")
        else:
            colour = ("0x1e2a44", "0x402020", "0x204030")[i % 3]
            cmd += ["-f", "lavfi", "-i", f"color=c={colour}:s={w}x{h}:r={fps}:d={part:g}"]
            card = (f"drawtext=text='Part {i // 2 + 1}':fontcolor=white:fontsize={h // 8}:x=(w-text_w)/2:"
                    f"y=(h-text_h)/2" if text else f"drawbox=x={w // 4}:y={h * 2 // 5}:w={w // 2}:h={h // 5}:"
                                                   f"color=white:t=fill")
            chains.append(f"[{i}:v]{card},setsar=1,format=yuv420p[p{i}]")
    joined = "".join(f"[p{i}]" for i in range(len(parts)))
    graph = ";".join(chains) + f";{joined}concat=n={len(parts)}:v=1:a=0[v]"
    cmd += ["-filter_complex", graph, "-map", "[v]", "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
            str(out)]
    _run(cmd, f"the long clip {out}")
    return Path(out)


def grid_clip(video: Path, out: Path, tile: int, seconds: float = 8.0, size: tuple[int, int] = GRID_SIZE,
              fps: int | None = None) -> Path:
    """`tile` x `tile` copies of `video` in one frame of `size` (tile 1: the video scaled up to it), `seconds` long;
    cell k starts k * 0.7 s into the video (looped), so the faces differ from cell to cell. Returns out (.mp4)."""
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    try:
        ffmpeg = find_ffmpeg()
    except FFmpegMissing:
        return _grid_with_opencv(video, out, tile, seconds, size, fps)
    w, h = size[0] // tile, size[1] // tile
    n = tile * tile
    cmd = [ffmpeg, "-nostdin", "-loglevel", "error", "-y"]
    for k in range(n):
        cmd += ["-stream_loop", "-1", "-ss", f"{0.7 * k:g}", "-i", str(video)]
    chains = [f"[{k}:v]scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,"
              f"setsar=1,setpts=PTS-STARTPTS[c{k}]" for k in range(n)]
    if n == 1:
        graph = chains[0].replace("[c0]", "[v]")
    else:
        layout = "|".join(f"{x * w}_{y * h}" for y in range(tile) for x in range(tile))
        graph = ";".join(chains) + ";" + "".join(f"[c{k}]" for k in range(n)) + \
            f"xstack=inputs={n}:layout={layout}[v]"
    cmd += ["-filter_complex", graph, "-map", "[v]", "-t", f"{seconds:g}"]
    if fps is not None:
        cmd += ["-r", str(fps)]
    cmd += ["-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(out)]
    _run(cmd, f"the {tile}x{tile} grid {out}")
    return Path(out)


def _frames(video: Path) -> tuple[list[np.ndarray], float]:
    from app.capture.sources import open_source

    with open_source(video) as src:
        return [f.image for f in iter(src.read, None)], src.fps or 30.0


def _write(frames, out: Path, size: tuple[int, int], fps: float) -> Path:
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {out} (and there is no ffmpeg)")
    try:
        for image in frames:
            writer.write(image)
    finally:
        writer.release()
    return Path(out)


def _grid_with_opencv(video: Path, out: Path, tile: int, seconds: float, size: tuple[int, int],
                      fps: int | None) -> Path:
    """grid_clip without ffmpeg: the same layout and offsets, composed here."""
    clip, rate = _frames(video)
    rate = float(fps or rate)
    w, h = size[0] // tile, size[1] // tile
    cells = []
    for image in clip:  # each frame scaled into its cell once, letterboxed
        s = min(w / image.shape[1], h / image.shape[0])
        small = cv2.resize(image, (round(image.shape[1] * s), round(image.shape[0] * s)), interpolation=cv2.INTER_AREA)
        cell = np.zeros((h, w, 3), np.uint8)
        y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
        cell[y:y + small.shape[0], x:x + small.shape[1]] = small
        cells.append(cell)

    def grids():
        for t in range(round(seconds * rate)):
            picks = [cells[(t + round(0.7 * k * rate)) % len(cells)] for k in range(tile * tile)]
            grid = np.vstack([np.hstack(picks[r * tile:(r + 1) * tile]) for r in range(tile)])
            yield cv2.copyMakeBorder(grid, 0, size[1] - grid.shape[0], 0, size[0] - grid.shape[1],
                                     cv2.BORDER_CONSTANT)

    return _write(grids(), out, size, rate)


def head_clip(video: Path, out: Path, frames: int) -> Path:
    """The first `frames` frames of `video` into `out` (.mp4): ffmpeg's H.264, else OpenCV's MPEG-4 part 2."""
    try:
        ffmpeg = find_ffmpeg()
    except FFmpegMissing:
        clip, rate = _frames(video)
        clip = clip[:frames]
        return _write(clip, out, (clip[0].shape[1], clip[0].shape[0]), rate)
    _run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(video), "-frames:v", str(frames), "-an",
          "-c:v", "libx264", "-crf", "18", str(out)], f"the first {frames} frames of {video}")
    return Path(out)
