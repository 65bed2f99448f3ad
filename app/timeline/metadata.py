"""What ran: the metadata saved with a session (source, model, providers, head, window, precision, temperature).
Stdlib only."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta


@dataclass
class SessionMetadata:
    """Where a session's rows came from; saved in the JSON export (the CSV is the bare table)."""
    source: str                     # video path, "camera 0", a device path or a stream URL (password masked)
    model: str                      # model card name
    providers: list[str]            # ONNX Runtime execution providers actually used, e.g. ["CPUExecutionProvider"]
    head: str                       # the card's key of the head that ran: relation (FAN), self, fusion, gru, ...
    window_length: int              # frames in the FAN window
    started_at: str                 # ISO 8601, UTC, e.g. 2024-05-01T12:00:00+00:00
    app_version: str
    extra: dict = field(default_factory=dict)  # free-form: anything a front end wants to keep with the session
    precision: str = ""             # the embedder graph that ran: fp32 | int8 ("" in sessions before it was recorded)
    temperature: float | None = None  # T of the calibrated probabilities (1.0: raw); None in sessions before it

    def __post_init__(self) -> None:
        self.providers = [str(p) for p in self.providers]
        self.window_length = int(self.window_length)
        try:
            ts = datetime.fromisoformat(self.started_at)
        except (TypeError, ValueError):
            raise ValueError(f"SessionMetadata.started_at must be ISO 8601, got {self.started_at!r}") from None
        if ts.utcoffset() != timedelta(0):
            raise ValueError(f"SessionMetadata.started_at must be UTC (+00:00 or Z), got {self.started_at!r}")

    def to_dict(self) -> dict:
        """The JSON export's metadata. `attention` repeats `head` under the field's earlier name, so a reader of
        schema-3 files written before the rename keeps working (the schema only ever adds fields within a version)."""
        d = {}
        for key, value in asdict(self).items():
            d[key] = value
            if key == "head":
                d["attention"] = value
        return d
