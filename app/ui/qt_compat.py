"""A guard against a PySide6 reference-counting bug that crashes the window on Python 3.11.

PySide6/shiboken6 6.12.0 on Python < 3.12 drops one reference to None for every call of a Qt method that returns
void (setText, update, resize, every paintEvent override...) and to True for some calls with bool arguments (measured
here: QLabel.setText -1 None per call; pyqtgraph PlotDataItem.setData -11 None, -2 True). None starts with ~5,000
references, so a playing window aborts within a minute with "Fatal Python error: none_dealloc: deallocating None".
6.11.3 does not do this, and on Python >= 3.12 None, True and False are immortal (PEP 683), so the bug is harmless
there.

`apply()` measures whether the installed binding leaks, and only then makes those three objects effectively immortal
the way Python 3.12 does: it adds 2**40 to their reference counts (at one lost reference per void call, decades of
calls). They are never deallocated in a healthy interpreter anyway, so nothing else changes. The real fix is a
PySide6 without the bug (requirements: PySide6-Essentials 6.11.3).
"""
from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 40
_PROBE_CALLS = 64
applied = False      # True once the headroom was added (the installed binding leaks)


def leaks_none() -> bool:
    """Whether a void Qt call loses a reference to None with the installed PySide6."""
    from PySide6.QtCore import QObject

    probe = QObject()
    probe.setObjectName("probe")
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")
    return before - sys.getrefcount(None) >= _PROBE_CALLS // 2


def apply() -> bool:
    """Add the headroom when needed (idempotent); whether it is in place."""
    global applied
    if applied or sys.version_info >= (3, 12) or not leaks_none():
        return applied
    if sys.implementation.name != "cpython" or hasattr(sys, "gettotalrefcount"):
        return applied  # another object layout (PyPy, a debug build): leave it alone rather than guess
    for obj in (None, True, False):
        # ob_refcnt is the first field of every PyObject (a Py_ssize_t) in release builds of CPython
        ctypes.c_ssize_t.from_address(id(obj)).value += _HEADROOM
    applied = True
    return applied
