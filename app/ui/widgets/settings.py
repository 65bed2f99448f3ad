"""The window's settings: a plain dataclass (what the pipeline and display need), its QSettings round trip (so they
are remembered between runs) and the dock that edits them.

The command line wins over stored settings for one run without overwriting them (see `UiSettings.with_args`).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.recognition.heads import display_name, head_choices
from app.recognition.card import DEVICES, PRECISIONS
from app.pipeline import PipelineConfig
from app.ui.widgets import theme


@dataclass(frozen=True)
class UiSettings:
    model: str = ""                        # a model's .onnx or .json; "" = the shipped default in weights/
    device: str = "auto"                   # auto | cuda | cpu
    precision: str = "auto"                # the embedder graph: auto (int8 on the CPU when the card has it) | fp32 | int8
    head: str = ""                         # the head (app.recognition.heads: fan self fusion gru gru-causal transformer
                                           # ensemble, or a card key such as relation); "" = the card's default
    window_length: int = 0                 # 0 = the card's
    max_faces: int = PipelineConfig.max_faces
    min_detection_confidence: float = PipelineConfig.min_detection_confidence
    smoothing: bool = True                 # EMA over the displayed probabilities (exports stay raw)

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(weights=Path(self.model) if self.model else None, device=self.device,
                              precision=self.precision, head=self.head or None, window_length=self.window_length or None,
                              max_faces=self.max_faces, min_detection_confidence=self.min_detection_confidence)

    def with_args(self, args) -> UiSettings:
        """Apply what was given on the command line (main.py's parser, or WindowOptions): None means 'not given',
        so the stored choice stands; any value given, a default's included, overrides it."""
        changes = {}
        if getattr(args, "weights", None):
            changes["model"] = str(args.weights)
        if getattr(args, "device", None) is not None:
            changes["device"] = args.device
        if getattr(args, "precision", None) is not None:
            changes["precision"] = args.precision
        if getattr(args, "head", None):
            changes["head"] = args.head
        if getattr(args, "window", None):
            changes["window_length"] = int(args.window)
        if getattr(args, "max_faces", None) is not None:
            changes["max_faces"] = int(args.max_faces)
        return replace(self, **changes)

    @classmethod
    def load(cls, store: QSettings) -> UiSettings:
        default = cls()
        values = {}
        for f in fields(cls):
            raw = store.value(f"pipeline/{f.name}", getattr(default, f.name))
            if f.name == "head" and not store.contains("pipeline/head"):  # settings stored before the key's rename
                raw = store.value("pipeline/attention", default.head)
            try:  # QSettings' INI backend returns strings; a hand-edited or stale value falls back to the default
                if f.type in ("bool", bool):
                    value = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
                elif f.type in ("int", int):
                    value = int(raw)
                elif f.type in ("float", float):
                    value = float(raw)
                else:
                    value = str(raw)
            except (TypeError, ValueError):
                value = getattr(default, f.name)
            values[f.name] = value
        if values["device"] not in DEVICES:
            values["device"] = default.device
        if values["precision"] not in PRECISIONS:
            values["precision"] = default.precision
        return cls(**values)

    def save(self, store: QSettings) -> None:
        for f in fields(self):
            store.setValue(f"pipeline/{f.name}", getattr(self, f.name))
        store.sync()


class SettingsDock(QDockWidget):
    """Edits UiSettings; `settings_applied(UiSettings)` when the user applies a change that needs a new pipeline,
    `smoothing_toggled(bool)` at once for the display-only switch."""

    settings_applied = Signal(object)
    smoothing_toggled = Signal(bool)

    def __init__(self, settings: UiSettings, parent: QWidget | None = None):
        super().__init__("Settings", parent)
        self.setObjectName("settingsDock")
        self.setFeatures(QDockWidget.DockWidgetClosable | QDockWidget.DockWidgetMovable |
                         QDockWidget.DockWidgetFloatable)
        body = QWidget()
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)

        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("shipped model in weights/")
        self.model_edit.setToolTip("A model's .onnx or .json card; empty uses the model shipped in weights/.")
        browse = QToolButton()
        browse.setText("...")
        browse.setToolTip("Choose a model file")
        browse.clicked.connect(self.browse_model)
        row = QHBoxLayout()
        row.addWidget(self.model_edit, 1)
        row.addWidget(browse)
        form.addRow("Model", row)

        self.device_combo = QComboBox()
        for d, text in zip(DEVICES, ("Auto (CUDA if available)", "CUDA", "CPU")):
            self.device_combo.addItem(text, d)
        form.addRow("Device", self.device_combo)

        self.precision_combo = QComboBox()
        for pr, text in zip(PRECISIONS, ("Auto (int8 on the CPU)", "Float (fp32)", "int8")):
            self.precision_combo.addItem(text, pr)
        self.precision_combo.setToolTip("The embedder graph. int8 is the same network quantized (models.release.quantize): "
                                        "~2x faster on a CPU, its agreement with fp32 is in the model card. CUDA "
                                        "always runs fp32.")
        form.addRow("Embedder", self.precision_combo)

        self.head_combo = QComboBox()
        self.head_combo.setToolTip("The head that reads each face's window: FAN (relation attention, alpha and "
                                        "beta), self (alpha only), score fusion, the ABAW2021 GRU (centre or newest "
                                        "frame) or transformer, or their ensemble. Offered as the model card lists "
                                        "them.")
        form.addRow("Head", self.head_combo)

        self.window_spin = QSpinBox()
        self.window_spin.setRange(0, 64)
        self.window_spin.setSpecialValueText("model's")
        self.window_spin.setSuffix(" frames")
        self.window_spin.setToolTip("Frames in the FAN window; 0 uses the model card's.")
        form.addRow("Window", self.window_spin)

        self.faces_spin = QSpinBox()
        self.faces_spin.setRange(1, 16)
        form.addRow("Max faces", self.faces_spin)

        self.confidence_spin = QDoubleSpinBox()
        self.confidence_spin.setRange(0.05, 0.99)
        self.confidence_spin.setSingleStep(0.05)
        self.confidence_spin.setDecimals(2)
        form.addRow("Detection confidence", self.confidence_spin)

        self.smoothing_check = QCheckBox("Smooth displayed labels")
        self.smoothing_check.setToolTip("Averages the shown probabilities over a few frames. Exports stay raw.")
        self.smoothing_check.toggled.connect(self._on_smoothing_toggled)
        form.addRow("", self.smoothing_check)

        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Reload the model with these settings")
        self.apply_button.clicked.connect(self._on_apply_clicked)
        self.model_info = QLabel()
        self.model_info.setWordWrap(True)
        self.model_info.setStyleSheet(f"color: {theme.MUTED};")

        lay = QVBoxLayout(body)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.addLayout(form)
        lay.addWidget(self.apply_button)
        lay.addSpacing(6)
        lay.addWidget(self.model_info)
        lay.addStretch(1)
        self.setWidget(body)
        self.set_settings(settings)
        self.set_head_types(())

    def set_settings(self, s: UiSettings) -> None:
        self._settings = s
        self.model_edit.setText(s.model)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(s.device)))
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(s.precision)))
        self.window_spin.setValue(s.window_length)
        self.faces_spin.setValue(s.max_faces)
        self.confidence_spin.setValue(s.min_detection_confidence)
        self.smoothing_check.blockSignals(True)
        self.smoothing_check.setChecked(s.smoothing)
        self.smoothing_check.blockSignals(False)
        self._select_head(s.head)

    def set_head_types(self, types, default: str = "") -> None:
        """Offer the card's heads (card keys, shown by their app names, plus the ensemble when the card has all its
        members); a single-head card shows it, disabled."""
        names = head_choices(types)
        self.head_combo.clear()
        default = display_name(default) if default else ""
        self.head_combo.addItem(f"model's ({default})" if default else "model's", "")
        for t in names:
            self.head_combo.addItem(t, t)
        self.head_combo.setEnabled(len(names) > 1)
        self._select_head(self._settings.head)

    def _select_head(self, head: str) -> None:
        i = self.head_combo.findData(display_name(head) if head else head)
        self.head_combo.setCurrentIndex(max(i, 0))

    def current(self) -> UiSettings:
        return UiSettings(model=self.model_edit.text().strip(), device=self.device_combo.currentData(),
                          precision=self.precision_combo.currentData(), head=self.head_combo.currentData() or "",
                          window_length=self.window_spin.value(),
                          max_faces=self.faces_spin.value(), min_detection_confidence=self.confidence_spin.value(),
                          smoothing=self.smoothing_check.isChecked())

    def browse_model(self) -> None:
        """Pick a model file; applying it reloads the pipeline."""
        start = self.model_edit.text() or str(Path.cwd() / "weights")
        path, _ = QFileDialog.getOpenFileName(self, "Choose a FAN Live model", start,
                                              "FAN Live model (*.onnx *.json);;All files (*)")
        if path:
            self.model_edit.setText(path)
            self._on_apply_clicked()

    def _on_apply_clicked(self) -> None:
        self._settings = self.current()
        self.settings_applied.emit(self._settings)

    def _on_smoothing_toggled(self, on: bool) -> None:
        self._settings = replace(self._settings, smoothing=on)
        self.smoothing_toggled.emit(on)
