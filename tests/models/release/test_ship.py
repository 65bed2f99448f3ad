"""The release's training lineage: the commands behind a stage-2 checkpoint, read from the runs' config files."""
import json
from pathlib import Path

from models.release.ship import training_lineage


def _run(root: Path, name: str, command: str, **cfg) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"command": command, **cfg}))
    return d


def test_lineage_follows_the_clips_embedder_and_its_warm_starts(tmp_path):
    a = _run(tmp_path, "frames", "/x/models/train.py frames --epochs 14")
    b = _run(tmp_path, "frames2", "/x/models/train.py frames --init A", init=str(a / "best.pt"))
    c = _run(tmp_path, "frames3", "/x/models/train.py frames --swa-epochs 8", init=str(b / "last.pt"))
    clips = _run(tmp_path, "clips", "/x/models/train.py clips --variants 4", embedder=str(c / "swa.pt"))
    assert training_lineage(clips / "model.pt") == [
        "python -m models.train frames --epochs 14",
        "python -m models.train frames --init A",
        "python -m models.train frames --swa-epochs 8",
        "python -m models.train clips --variants 4",
    ]


def test_lineage_stops_at_a_cycle(tmp_path):
    a = tmp_path / "frames"
    _run(tmp_path, "frames", "/x/models/train.py frames", init=str(a / "best.pt"))
    clips = _run(tmp_path, "clips", "/x/models/train.py clips", embedder=str(a / "best.pt"))
    assert training_lineage(clips / "model.pt") == ["python -m models.train frames", "python -m models.train clips"]
