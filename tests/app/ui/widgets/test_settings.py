from argparse import Namespace
from pathlib import Path

import pytest

pytestmark = pytest.mark.qt


def test_settings_round_trip_and_command_line_precedence(tmp_path):
    from PySide6.QtCore import QSettings

    from app.ui.widgets.settings import UiSettings

    store = QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)
    assert UiSettings.load(store) == UiSettings()
    s = UiSettings(model="/m/x.onnx", device="cpu", head="self", window_length=8, max_faces=2,
                   min_detection_confidence=0.7, smoothing=False)
    s.save(store)
    again = UiSettings.load(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    assert again == s
    args = Namespace(weights=Path("/other.json"), device=None, head=None, window=None, max_faces=None)
    over = again.with_args(args)  # only what was given on the command line wins
    assert over.model == "/other.json" and over.device == "cpu" and over.max_faces == 2
    cfg = over.pipeline_config()
    assert cfg.weights == Path("/other.json") and cfg.window_length == 8 and cfg.head == "self"
    # a value given that equals a default still overrides the stored choice: None alone means "not given"
    given = again.with_args(Namespace(device="auto", max_faces=4))
    assert (given.device, given.max_faces) == ("auto", 4)
    assert UiSettings().pipeline_config().weights is None  # "" means the shipped default model


def test_bad_stored_values_fall_back_to_defaults(tmp_path):
    from PySide6.QtCore import QSettings

    from app.ui.widgets.settings import UiSettings

    (tmp_path / "s.ini").write_text("[pipeline]\nmax_faces=lots\ndevice=tpu\nsmoothing=false\n")
    s = UiSettings.load(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    assert s.max_faces == UiSettings().max_faces and s.device == "auto" and s.smoothing is False


def test_a_head_stored_under_its_old_key_still_loads(tmp_path):
    from PySide6.QtCore import QSettings

    from app.ui.widgets.settings import UiSettings

    (tmp_path / "s.ini").write_text("[pipeline]\nattention=self\n")
    assert UiSettings.load(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)).head == "self"


def test_precision_and_blendshapes_reach_the_window_pipeline(tmp_path):
    """--precision is a stored setting the command line overrides (the dock offers it too); --no-blendshapes is a
    window option that the pipeline config carries."""
    from PySide6.QtCore import QSettings

    from app.ui.state.options import WindowOptions
    from app.ui.widgets.settings import UiSettings

    (tmp_path / "s.ini").write_text("[pipeline]\nprecision=fp16\n")
    stored = UiSettings.load(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    assert stored.precision == "auto"  # an unknown stored value falls back
    opts = WindowOptions.from_args(Namespace(precision="fp32", blendshapes=False, device=None, max_faces=None))
    assert (opts.precision, opts.blendshapes) == ("fp32", False)
    s = stored.with_args(opts)
    assert s.precision == "fp32" and s.pipeline_config().precision == "fp32"
    assert stored.with_args(WindowOptions()).precision == "auto"
