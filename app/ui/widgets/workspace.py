"""The window's central area: the banners, the video with its transport bar, the selected face's panel, the
attention strip and the timeline, laid out in splitters. It only builds and lays out; the window connects them."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from app.emotions import EMOTIONS
from app.ui.widgets import theme
from app.ui.widgets.banners import Banner, NoticeBanner
from app.ui.widgets.face_panel import AttentionStrip, FacePanel
from app.ui.widgets.timeline import TimelineView, legend_html
from app.ui.widgets.transport import TransportBar
from app.ui.widgets.video_view import VideoView


def section(title: str, legend: str, body: QWidget) -> QWidget:
    """`body` under a title line with a muted legend."""
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(6, 4, 6, 2)
    lay.setSpacing(2)
    head = QHBoxLayout()
    t = QLabel(title)
    t.setObjectName("sectionTitle")
    leg = QLabel(legend)
    leg.setStyleSheet(f"color: {theme.MUTED};")
    head.addWidget(t)
    head.addSpacing(12)
    head.addWidget(leg, 1)
    lay.addLayout(head)
    lay.addWidget(body, 1)
    return box


class Workspace(QWidget):
    """Banners on top (a model problem, an error, queued notices), then a vertical splitter: video + face panel,
    attention over the window, timeline."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.video = VideoView()
        self.transport = TransportBar()
        self.model_banner = Banner("warning")
        self.model_banner.close_button.hide()  # a missing model stays visible until one loads
        self.error_banner = Banner("error")
        self.notice_banner = NoticeBanner()

        video_col = QWidget()
        vl = QVBoxLayout(video_col)
        vl.setContentsMargins(0, 0, 0, 0)
        vl.setSpacing(0)
        vl.addWidget(self.video, 1)
        vl.addWidget(self.transport)

        self.face_panel = FacePanel(EMOTIONS)
        self.face_panel.setMinimumWidth(260)
        top = QSplitter(Qt.Horizontal)
        top.addWidget(video_col)
        top.addWidget(self.face_panel)
        top.setStretchFactor(0, 4)
        top.setStretchFactor(1, 1)
        top.setSizes([900, 300])

        self.attention = AttentionStrip()
        attention_box = section(
            "ATTENTION OVER THE WINDOW",
            f"<span style='color:{theme.ALPHA_BLUE}'>\u25a0</span> self-attention \u03b1 &nbsp;&nbsp; "
            f"<span style='color:{theme.WEIGHT_ORANGE}'>\u25a0</span> final weight, relative to the window's largest "
            "(what it is for the head that runs: the line below) &nbsp;&nbsp; oldest \u2192 newest", self.attention)
        self.timeline = TimelineView(EMOTIONS)
        timeline_box = section(
            "TIMELINE", f"selected face, last {self.timeline.span_s:.0f} s; band: top label &nbsp;&nbsp; "
            + legend_html(EMOTIONS), self.timeline)

        main = QSplitter(Qt.Vertical)
        main.addWidget(top)
        main.addWidget(attention_box)
        main.addWidget(timeline_box)
        main.setStretchFactor(0, 5)
        main.setStretchFactor(1, 0)
        main.setStretchFactor(2, 2)
        main.setSizes([520, 160, 220])
        main.setChildrenCollapsible(False)
        self.splitter = main

        cl = QVBoxLayout(self)
        cl.setContentsMargins(6, 6, 6, 0)
        cl.setSpacing(6)
        for banner in (self.model_banner, self.error_banner, self.notice_banner):
            cl.addWidget(banner)
        cl.addWidget(main, 1)
