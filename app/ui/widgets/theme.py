"""The window's look: a dark-neutral Fusion palette, and the colours that carry meaning (one per emotion; blue for
self-attention alpha and orange for the final weight, as in the FAN paper's figure)."""
from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.emotions import EMOTION_COLORS

ALPHA_BLUE = "#4c8ef7"
WEIGHT_ORANGE = "#f59e2b"
ACCENT = "#4c8ef7"
RECORD_RED = "#e5484d"

BACKGROUND = "#1e2024"
SURFACE = "#26292e"
VIDEO_BACKGROUND = "#111214"
TEXT = "#e6e8eb"
MUTED = "#9ba1a6"
GRID = "#3a3f45"



def emotion_color(label: str) -> QColor:
    return QColor(EMOTION_COLORS.get(label, MUTED))


def apply_theme(app: QApplication) -> None:
    """Fusion with a dark palette: the same look on every platform, readable over video."""
    app.setStyle("Fusion")
    pal = QPalette()
    roles = {
        QPalette.Window: BACKGROUND, QPalette.WindowText: TEXT, QPalette.Base: SURFACE,
        QPalette.AlternateBase: BACKGROUND, QPalette.ToolTipBase: SURFACE, QPalette.ToolTipText: TEXT,
        QPalette.Text: TEXT, QPalette.Button: SURFACE, QPalette.ButtonText: TEXT, QPalette.BrightText: "#ffffff",
        QPalette.Highlight: ACCENT, QPalette.HighlightedText: "#ffffff", QPalette.Link: ACCENT,
        QPalette.PlaceholderText: MUTED,
    }
    for role, color in roles.items():
        pal.setColor(role, QColor(color))
    for role in (QPalette.Text, QPalette.ButtonText, QPalette.WindowText):
        pal.setColor(QPalette.Disabled, role, QColor("#5c6168"))
    app.setPalette(pal)
    app.setStyleSheet(f"""
        QToolTip {{ color: {TEXT}; background: {SURFACE}; border: 1px solid {GRID}; }}
        QStatusBar {{ color: {MUTED}; }}
        QStatusBar QLabel {{ color: {MUTED}; padding: 0 6px; }}
        QDockWidget::title {{ padding: 6px; background: {SURFACE}; }}
        QToolBar {{ border: none; spacing: 4px; padding: 3px; }}
        QFrame#banner {{ background: #3a2a12; border: 1px solid #8a5a12; border-radius: 4px; }}
        QFrame#banner QLabel {{ color: #ffd9a0; }}
        QFrame#errorBanner {{ background: #3a1719; border: 1px solid #8c2f33; border-radius: 4px; }}
        QFrame#errorBanner QLabel {{ color: #ffc9c9; }}
        QFrame#noticeBanner {{ background: #15293f; border: 1px solid #2f5f8c; border-radius: 4px; }}
        QFrame#noticeBanner QLabel {{ color: #cfe3ff; }}
        QLabel#sectionTitle {{ color: {MUTED}; font-weight: 600; letter-spacing: 0.5px; }}
        QToolButton#record:checked {{ background: {RECORD_RED}; color: white; border-radius: 3px; }}
    """)
