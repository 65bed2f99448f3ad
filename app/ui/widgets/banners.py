"""The one-line message strips above the video (model problems, errors, queued notices) and the record icon."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget


def record_icon(color: str) -> QIcon:
    """A filled circle: the universal 'record' symbol."""
    pix = QPixmap(32, 32)
    pix.fill(Qt.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.Antialiasing, True)
    p.setPen(QPen(QColor("#ffffff"), 2))
    p.setBrush(QColor(color))
    p.drawEllipse(5, 5, 22, 22)
    p.end()
    return QIcon(pix)


class Banner(QFrame):
    """A one-line message strip above the video: model problems (persistent), errors and notices (dismissable)."""

    def __init__(self, kind: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName({"warning": "banner", "error": "errorBanner", "notice": "noticeBanner"}[kind])
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.LinksAccessibleByMouse)
        self.label.setOpenExternalLinks(False)
        self.button = QPushButton()
        self.button.hide()
        self.close_button = QToolButton()
        self.close_button.setText("\u2715")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.button)
        lay.addWidget(self.close_button)
        self.hide()

    def show_message(self, text: str, button: str | None = None) -> None:
        self.label.setText(text)
        self.button.setVisible(bool(button))
        if button:
            self.button.setText(button)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class NoticeBanner(Banner):
    """Notices in a queue, so one never hides another unread: the oldest shows, with "+N more"; dismissing it shows
    the next. A notice with the `key` of a queued one replaces it in place (a session's "recording to" becomes its
    "saved")."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("notice", parent)
        self._queue: list[tuple[str | None, str]] = []  # (key, text), oldest first
        self.close_button.clicked.disconnect()
        self.close_button.clicked.connect(self.dismiss)

    def show_message(self, text: str, button: str | None = None, key: str | None = None) -> None:
        for i, (k, _) in enumerate(self._queue):
            if key is not None and k == key:
                self._queue[i] = (key, text)
                break
        else:
            self._queue.append((key, text))
        self._show_first()

    def dismiss(self) -> None:
        if self._queue:
            self._queue.pop(0)
        self._show_first()

    def _show_first(self) -> None:
        if not self._queue:
            self.hide()
            return
        more = len(self._queue) - 1
        self.label.setText(self._queue[0][1] + (f" <i>(+{more} more: \u2715 shows the next)</i>" if more else ""))
        self.close_button.setToolTip("Next notice" if more else "Dismiss")
        self.show()

    @property
    def messages(self) -> list[str]:
        """Every notice not dismissed yet, oldest first."""
        return [text for _, text in self._queue]
