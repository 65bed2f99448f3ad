"""The desktop application: the QApplication with the app's names and theme, and `run_app(options)`, which opens the
window and runs it until it closes (app.runs.cli calls it without --no-window)."""
from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app import __version__
from app.runs.interrupt import install_stop_handlers
from app.ui.state.options import WindowOptions
from app.ui.widgets import theme
from app.ui.widgets.main_window import APP_NAME, ORGANIZATION, MainWindow


def make_app() -> QApplication:
    """The QApplication with the app's names and theme (reused if one exists: tests, tools)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationVersion(__version__)
    theme.apply_theme(app)
    return app


def run_app(options: WindowOptions) -> int:
    """Open the window (main.py without --no-window) and run until it closes; the exit code."""
    app = make_app()
    window = MainWindow(options)
    window.show()
    # Ctrl+C in the terminal, a `kill` (SIGTERM) and a closed terminal or logout (SIGHUP) close the window like its
    # close button: threads stopped, the session's CSV and JSON written. Python only runs signal handlers between
    # bytecodes, so a timer wakes the interpreter while Qt's loop waits.
    received: list[int] = []

    def on_stop(signum: int) -> None:
        received.append(signum)
        window.close()
        app.quit()

    install_stop_handlers(on_stop=on_stop)
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    code = app.exec()
    return 128 + received[0] if received else code
