"""File descriptor 2, where native libraries (ONNX Runtime, MediaPipe, TensorFlow Lite) write their logs, outside
Python's sys.stderr: captured for a block, so that their lines can be read and filtered, or kept out of the way of
the app's own one-line messages.

    with captured_fd2() as log:          # log[0]: what native code wrote in the block
        session = ort.InferenceSession(...)
    with captured_fd2(python_to_terminal=True, keep=False):
        run()                            # our messages still reach the terminal; native lines are dropped
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def captured_fd2(python_to_terminal: bool = False, keep: bool = True) -> Iterator[list[str]]:
    """Point fd 2 at a temp file for the block. Yields a list that holds the captured text afterwards (with
    `keep`; else it stays empty). `python_to_terminal`: Python's own sys.stderr (errors, warnings, progress bars)
    writes to the real stderr meanwhile, through a copy of it. Captures nothing where fd 2 is unusable."""
    box: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield box
        return
    python_stderr = sys.stderr
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        if python_to_terminal:
            sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0),
                                          encoding=python_stderr.encoding, errors="backslashreplace",
                                          line_buffering=True, write_through=True)
        try:
            yield box
        finally:
            if python_to_terminal:
                copy, sys.stderr = sys.stderr, python_stderr
                with contextlib.suppress(Exception):
                    copy.close()
            os.dup2(saved, 2)
            os.close(saved)
            if keep:
                sink.seek(0)
                box.append(sink.read().decode(errors="replace"))
