"""The window's toolbar: the source picker and the actions (open, record, export, sessions folder, settings,
full screen). The actions carry their shortcuts; the window connects their signals."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QSizePolicy, QStyle, QToolBar, QWidget

from app.ui.widgets import theme
from app.ui.widgets.banners import record_icon
from app.ui.widgets.source_picker import SourcePicker


def make_action(parent: QWidget, text: str, shortcut: str | None = None, tip: str | None = None,
                checkable: bool = False, icon=None) -> QAction:
    """An action with its shortcut (active anywhere in the window) named in its tooltip."""
    a = QAction(text, parent)
    if icon is not None:
        a.setIcon(parent.style().standardIcon(icon))
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
        a.setShortcutContext(Qt.WindowShortcut)
    a.setToolTip(f"{tip or text} ({QKeySequence(shortcut).toString()})" if shortcut else (tip or text))
    a.setCheckable(checkable)
    return a


class MainToolbar(QToolBar):
    """Source picker | Open video | Record, Export, Sessions folder | ... | Settings (`settings_action`, the
    settings dock's toggle), Full screen."""

    def __init__(self, window: QWidget, settings_action: QAction):
        super().__init__("Main", window)
        self.setObjectName("mainToolbar")
        self.setMovable(False)
        self.setIconSize(QSize(18, 18))
        self.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.source_picker = SourcePicker()
        self.addWidget(QLabel(" Source "))
        self.addWidget(self.source_picker)
        self.open_action = make_action(window, "Open video...", "Ctrl+O", "Open a video file",
                                       icon=QStyle.SP_DialogOpenButton)
        self.addAction(self.open_action)
        self.addSeparator()
        self.record_action = make_action(window, "Record", "Ctrl+R",
                                         "Start/stop recording the session (files record from the start)",
                                         checkable=True)
        self.record_action.setIcon(record_icon(theme.RECORD_RED))
        self.addAction(self.record_action)
        self.widgetForAction(self.record_action).setObjectName("record")
        self.export_action = make_action(window, "Export...", "Ctrl+E", "Export the session: CSV, JSON, PNG",
                                         icon=QStyle.SP_DialogSaveButton)
        self.addAction(self.export_action)
        self.sessions_action = make_action(window, "Sessions folder", None,
                                           "Open the folder where sessions are saved automatically",
                                           icon=QStyle.SP_DirOpenIcon)
        self.addAction(self.sessions_action)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.addWidget(spacer)
        settings_action.setText("Settings")
        settings_action.setIcon(window.style().standardIcon(QStyle.SP_FileDialogDetailedView))
        self.addAction(settings_action)
        self.fullscreen_action = make_action(window, "Full screen", "F", "Full screen",
                                             icon=QStyle.SP_TitleBarMaxButton)
        self.addAction(self.fullscreen_action)

    @property
    def actions_with_shortcuts(self) -> list[QAction]:
        return [self.open_action, self.record_action, self.export_action, self.sessions_action,
                self.fullscreen_action]
