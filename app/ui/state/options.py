"""What the window is started with: a small frozen dataclass, so the window never sees argparse.

main.py builds it from its command line (`WindowOptions.from_args`); tests, the benchmark and the screenshot tool
build it directly. Field names match main.py's options, so `UiSettings.with_args` reads either.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class WindowOptions:
    video: Path | None = None            # a file to open at once
    camera: int | str | None = None      # a camera index, device path or stream URL to open at once (not with video)
    export: tuple[Path, ...] = field(default_factory=tuple)  # files the session exports to when the window closes
    weights: Path | None = None          # a model's .onnx/.json; None = the stored setting or the shipped model
    device: str | None = None            # auto | cuda | cpu; None = the stored setting
    precision: str | None = None         # the embedder graph: auto | fp32 | int8; None = the stored setting
    head: str | None = None              # app.recognition.heads' --head names; None = the stored setting
    window: int | None = None            # FAN window length; None = the stored setting
    max_faces: int | None = None         # faces tracked at once; None = the stored setting
    lsl: bool = False                    # stream to Lab Streaming Layer from the start (app/ui/controllers/markers.py)
    blendshapes: bool = True             # False (--no-blendshapes): no blendshapes nor the iris refinement they need
    calibrated: bool = True              # False (--raw-probabilities): the head's raw probabilities
    reconnect: float | None = None       # a live source lost is retried this long; None: app.capture's default

    def __post_init__(self):
        object.__setattr__(self, "video", Path(self.video) if self.video is not None else None)
        object.__setattr__(self, "weights", Path(self.weights) if self.weights is not None else None)
        object.__setattr__(self, "export", tuple(Path(p) for p in (self.export or ())))

    @classmethod
    def from_args(cls, args) -> WindowOptions:
        """The window's share of main.py's parsed command line (any object with those attributes)."""
        return cls(video=getattr(args, "video", None), camera=getattr(args, "camera", None),
                   export=tuple(getattr(args, "export", None) or ()), weights=getattr(args, "weights", None),
                   device=getattr(args, "device", None), precision=getattr(args, "precision", None),
                   head=getattr(args, "head", None), window=getattr(args, "window", None),
                   max_faces=getattr(args, "max_faces", None),
                   lsl=bool(getattr(args, "lsl", False)), blendshapes=bool(getattr(args, "blendshapes", True)),
                   calibrated=bool(getattr(args, "calibrated", True)),
                   reconnect=getattr(args, "reconnect", None))
