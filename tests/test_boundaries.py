"""Qt stays inside app/ui: the engine, the CLI and the training code run without PySide6 (STYLE 3)."""
import re

from app.paths import ROOT

QT_IMPORT = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt\d|pyqtgraph|shiboken6)\b", re.MULTILINE)


def test_qt_is_imported_only_under_app_ui():
    offenders = []
    for folder in ("app", "models"):
        for path in (ROOT / folder).rglob("*.py"):
            if (ROOT / "app" / "ui") in path.parents:
                continue
            if QT_IMPORT.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    assert QT_IMPORT.search((ROOT / "main.py").read_text()) is None
