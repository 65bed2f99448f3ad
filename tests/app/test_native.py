"""app.native: file descriptor 2 captured around native code, with Python's own stderr kept on the terminal."""
import os
import sys

from app.native import captured_fd2


def test_what_native_code_writes_to_fd2_is_captured_and_fd2_restored(capfd):
    with captured_fd2() as log:
        os.write(2, b"W0000 native line\n")
    assert log == ["W0000 native line\n"]
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_python_stderr_reaches_the_terminal_while_native_lines_are_dropped(capfd):
    before = sys.stderr
    with captured_fd2(python_to_terminal=True, keep=False) as log:
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate\n")
        print("warning: ours", file=sys.stderr)
    assert sys.stderr is before and log == []
    assert capfd.readouterr().err == "warning: ours\n"
