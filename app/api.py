"""The Python API: videos in, pandas DataFrames out (the CSV export's schema). For notebooks and scripts.

    from app.api import AnalysisConfig, analyze_video, analyze_folder
    df = analyze_video("../shared/data/videos/single_face.mp4")            # one row per (frame, face)
    df.groupby("face_id")["label"].value_counts(normalize=True)
    runs = analyze_folder("recordings/", AnalysisConfig(workers=2), export_dir="results/")   # resumable

A DataFrame has exactly the columns of the CSV export, in its order (`app.timeline.rows.CSV_COLUMNS`, the one source of
truth), with the dtypes `pandas.read_csv` gives that file: it is built by reading the very CSV the run exported
(a temporary one when no export is asked for), so the two can never differ. `analyze_folder` adds a leading
`video` column (the file name). Run facts ride in `df.attrs`: `summary`, `status`, `damage`, `exports`, and for a
folder `failed` ({file name: one-line reason}) and `skipped` (file names whose exports were already complete).

No argparse, no Qt: the settings are `AnalysisConfig` (and `app.pipeline.PipelineConfig` inside it). Errors are the
engine's one-line exceptions: CaptureError (video), ModelError (weights), ExportError (export path).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from app.pipeline import Pipeline, PipelineConfig
from app.timeline.rows import CSV_COLUMNS

# Columns read as whole numbers and as text; every other CSV column is a float. An empty export has no values to
# infer dtypes from, so they are set from these.
_INT_COLUMNS = ("frame_index", "face_id")
_TEXT_COLUMNS = ("label",)


@dataclass(frozen=True)
class AnalysisConfig:
    """How to analyse. `pipeline` is the recognition path (model, device, faces, window); the rest is how a folder
    is spread out: `workers` processes on this machine, or a Ray cluster (`ray`: "auto" = the cluster this machine
    belongs to, "local" = start one here with `workers` CPUs, or an address like "ray://head:10001")."""
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    workers: int = 1
    ray: str | None = None
    progress: bool = False     # tqdm bars (overall, for a folder)
    resume: bool = True        # a folder with export_dir: skip videos whose exports are complete

    def __post_init__(self) -> None:
        if not isinstance(self.pipeline, PipelineConfig):
            raise TypeError(f"AnalysisConfig.pipeline must be a PipelineConfig, got {type(self.pipeline).__name__}")
        if int(self.workers) < 1:
            raise ValueError(f"AnalysisConfig.workers must be >= 1, got {self.workers}")


def _as_config(config: AnalysisConfig | PipelineConfig | None) -> AnalysisConfig:
    if config is None:
        return AnalysisConfig()
    if isinstance(config, PipelineConfig):
        return AnalysisConfig(pipeline=config)
    if isinstance(config, AnalysisConfig):
        return config
    raise TypeError(f"config must be an AnalysisConfig or a PipelineConfig, got {type(config).__name__}")


def read_timeline(path: Path | str) -> pd.DataFrame:
    """A CSV export (or journal) as a typed DataFrame: the CSV's columns in its order; floats read back exactly
    (round trip), whole-number columns int64, the label as text, also when the file has no rows."""
    df = pd.read_csv(path, float_precision="round_trip")
    if df.empty:
        df = df.astype({c: ("int64" if c in _INT_COLUMNS else "object" if c in _TEXT_COLUMNS else "float64")
                        for c in df.columns})
    return df


def _csv_target(exports: list[Path], tmp: Path, stem: str) -> tuple[list[Path], Path]:
    """The exports plus, when none is a CSV, a temporary CSV to read the frame from."""
    csvs = [e for e in exports if e.suffix.lower() == ".csv"]
    if csvs:
        return exports, csvs[0]
    extra = tmp / f"{stem}.csv"
    return [*exports, extra], extra


def analyze_video(path: Path | str, config: AnalysisConfig | PipelineConfig | None = None,
                  exports: list[Path | str] | tuple = ()) -> pd.DataFrame:
    """One video -> one row per (frame, face), the CSV export's columns. `exports` (.csv/.json paths) are also
    written, atomically, as the CLI writes them. A damaged (truncated) video gives what was decoded and says so in
    df.attrs["damage"]. Raises CaptureError / ModelError / ExportError (one line)."""
    from app.runs.replay import check_inputs, replay_file

    from app.capture.frame import CaptureError

    cfg = _as_config(config)
    if not str(path).strip():  # Path("") is ".", the working folder
        raise CaptureError("no video given (an empty path)")
    video = Path(path).expanduser()
    if video.is_dir():
        raise CaptureError(f"{video} is a folder: analyze_folder reads every video in one")
    exports = [Path(e).expanduser() for e in exports]
    check_inputs(video, exports)  # a wrong path or export fails before the model loads
    with tempfile.TemporaryDirectory(prefix="fanlive-api-") as tmp:
        targets, csv_path = _csv_target(exports, Path(tmp), video.stem)
        with Pipeline(cfg.pipeline) as pipeline:
            result = replay_file(video, targets, pipeline, progress=cfg.progress)
        df = read_timeline(csv_path)
    df.attrs.update(source=str(video), status=result.status, damage=result.damage, summary=result.summary,
                    frames=result.frames, exports=[str(e) for e in exports])
    return df


def analyze_folder(folder: Path | str, config: AnalysisConfig | PipelineConfig | None = None,
                   export_dir: Path | str | None = None) -> pd.DataFrame:
    """Every video in `folder` (sorted by name), on `config.workers` processes or a Ray cluster -> one DataFrame,
    a leading `video` column (file name) and then the CSV's columns. With `export_dir`, each video's CSV goes there
    (`<stem>.csv`) and a rerun skips the videos whose exports are complete (`config.resume`), reading their rows
    back; without it, the exports live in a temporary folder. A video that fails is left out, with its one-line
    reason in df.attrs["failed"]; the others go on."""
    from app.runs.folder import run_folder

    cfg = _as_config(config)
    with tempfile.TemporaryDirectory(prefix="fanlive-api-") as tmp:
        out = Path(export_dir).expanduser() if export_dir is not None else Path(tmp)
        run = run_folder(Path(folder).expanduser(), [out], cfg.pipeline, workers=cfg.workers, ray=cfg.ray,
                         progress=cfg.progress, resume=cfg.resume and export_dir is not None)
        frames = []
        for r in run.completed:
            csv = next(e for e in r.exports if e.suffix.lower() == ".csv")
            df = read_timeline(csv)
            df.insert(0, "video", pd.Series([r.source.name] * len(df), dtype="object"))
            frames.append(df)
    if frames:
        df = pd.concat(frames, ignore_index=True)
    else:
        df = read_timeline_empty()
        df.insert(0, "video", pd.Series([], dtype="object"))
    df.attrs.update(failed={r.source.name: r.error for r in run.results if r.status == "failed"},
                    damaged={r.source.name: r.damage for r in run.results if r.status == "damaged"},
                    skipped=[r.source.name for r in run.skipped],
                    summaries={r.source.name: r.summary for r in run.completed})
    return df


def read_timeline_empty() -> pd.DataFrame:
    """A DataFrame with the CSV's columns and dtypes and no rows."""
    return pd.DataFrame({c: pd.Series([], dtype="int64" if c in _INT_COLUMNS else "object" if c in _TEXT_COLUMNS
                                      else "float64") for c in CSV_COLUMNS})
