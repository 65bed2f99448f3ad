"""FAN Live runtime: capture, faces, inference, session/export and (under app.ui) the Qt window.

Everything outside app.ui is Qt-free so the engine runs headless and in tests without PySide6.
"""

__version__ = "0.1.0"
