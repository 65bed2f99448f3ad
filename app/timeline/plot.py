"""A PNG of one face's timeline: its 7 probabilities over time above a band of its label (matplotlib, imported on
use)."""
from __future__ import annotations

import io
import itertools
from collections.abc import Iterable
from pathlib import Path

from app.durable import atomic_write, os_reason
from app.emotions import EMOTION_COLORS, EMOTIONS
from app.timeline.files import ExportError
from app.timeline.rows import TimelineRow
from app.timeline.summary import NO_FACE_MESSAGE


# One colour per class, in EMOTIONS order (anger red ... neutral grey).
_COLOURS = tuple(EMOTION_COLORS[e] for e in EMOTIONS)


def plot_timeline(rows: Iterable[TimelineRow], path_png: Path | str, face_id: int | None = None,
                  title: str | None = None) -> Path:
    """PNG of one face's 7 probabilities over time (stacked areas) above a band of its per-frame label.

    face_id None picks the face with the most rows. Written atomically. Raises ValueError when there is nothing to plot.
    """
    # The object API with its own Agg canvas, not matplotlib.use("Agg") + pyplot: use() is process-wide and, once the
    # Qt window has imported pyplot, switching backends closes all of its open figures.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if r.face_found]
    if not rows:
        raise ValueError(f"nothing to plot: {NO_FACE_MESSAGE}")
    if face_id is None:
        counts: dict[int, int] = {}
        for r in rows:
            counts[r.face_id] = counts.get(r.face_id, 0) + 1
        face_id = max(counts, key=lambda k: (counts[k], -k))
    face = sorted((r for r in rows if r.face_id == face_id), key=lambda r: r.time_s)
    if not face:
        raise ValueError(f"nothing to plot: no rows for face {face_id}")

    t = [r.time_s for r in face]
    steps = sorted(b - a for a, b in itertools.pairwise(t) if b > a)
    step = steps[len(steps) // 2] if steps else 1.0 / 30
    # Break the areas where the face was lost for a while instead of drawing a ramp across the gap.
    gap = max(5 * step, 0.5)
    xs, ys = [], [[] for _ in EMOTIONS]
    for i, r in enumerate(face):
        if i and r.time_s - face[i - 1].time_s > gap:
            xs.append(face[i - 1].time_s + step)
            for k in range(len(EMOTIONS)):
                ys[k].append(float("nan"))
        xs.append(r.time_s)
        for k, p in enumerate(r.probs):
            ys[k].append(p)

    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax, band = fig.subplots(2, 1, sharex=True, height_ratios=[6, 1])
    ax.stackplot(xs, ys, colors=_COLOURS, labels=EMOTIONS, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(title or f"face {face_id}")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small")
    for k in range(len(EMOTIONS)):
        spans = [(r.time_s, min(step, (face[i + 1].time_s - r.time_s) if i + 1 < len(face) else step))
                 for i, r in enumerate(face) if r.label == EMOTIONS[k]]
        if spans:
            band.broken_barh(spans, (0, 1), facecolors=_COLOURS[k], edgecolor="none")
    band.set_yticks([])
    band.set_ylabel("label", rotation=0, ha="right", va="center")
    band.set_xlabel("time (s)")
    band.set_xlim(t[0], t[-1] + step)

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path_png = Path(path_png)
    try:
        atomic_write(path_png, lambda f: f.write(buf.getvalue()), binary=True)
    except OSError as e:
        raise ExportError(f"cannot write {path_png}: {os_reason(e)}") from None
    return path_png
