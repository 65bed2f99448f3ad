"""Stop signals: SIGINT (Ctrl+C), SIGTERM (`kill`, a logout) and SIGHUP (a closed terminal) all mean "stop now and
export what was recorded", in a headless run and in the window. Qt-free.

* `install_stop_handlers()` (in the main thread of the process that runs the replay): the first stop signal raises
  `Interrupted(signum)`, a KeyboardInterrupt, wherever the main thread is; later ones are ignored, so a second
  Ctrl+C cannot break the final writes the first one started.
* `finishing()`: a block that a stop signal must not cut short (a session's final files: the exports, the study
  files, then the journal's removal). A signal that arrives inside it is raised when the block ends.
* `StopFlag`: a stop request shared by the driver of a folder replay and its worker processes (one int in shared
  memory, read and written without a lock, so a signal handler may set it). A worker installs
  `install_stop_handlers(flag)`: a signal only sets the flag, and the replay, which calls `flag.check()` once a
  frame, ends there (`Interrupted`) with its rows exported; the driver sets the same flag when it is signalled.
* The window installs `install_stop_handlers(on_stop=...)`: the first signal calls it (the window closes as by its
  close button, which saves the session) instead of raising.
"""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class Interrupted(KeyboardInterrupt):
    """SIGTERM/SIGHUP, handled as Ctrl+C is: the replay stops and what was recorded is exported."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)


def signal_number(e: BaseException) -> int:
    """The signal an interrupt stands for (a plain KeyboardInterrupt is Ctrl+C's SIGINT)."""
    return e.signum if isinstance(e, Interrupted) else int(signal.SIGINT)


class StopFlag:
    """A stop request: 0 while running, else the number of the signal that asked for the stop."""

    def __init__(self, value=None):
        # a multiprocessing RawValue("i") to share it with worker processes (passed when they start), else local
        self._value = value

    @classmethod
    def shared(cls, ctx) -> StopFlag:
        return cls(ctx.RawValue("i", 0))

    @property
    def signum(self) -> int:
        return int(self._value.value) if self._value is not None else 0

    def request(self, signum: int) -> None:
        if self._value is not None and not self._value.value:
            self._value.value = int(signum)

    def check(self) -> None:
        """Raise Interrupted when a stop was requested."""
        if self.signum:
            raise Interrupted(self.signum)


class _State:
    installed = False
    signum: int | None = None       # the first stop signal received since install_stop_handlers()
    flag: StopFlag | None = None    # a worker: a signal sets this instead of raising
    on_stop = None                  # the window: a signal calls this (with its number) instead of raising
    finishing = 0                   # depth of finishing() blocks


def _on_signal(signum, _frame) -> None:
    if _State.signum is not None:  # the first signal stops the run; one more must not break the final writes
        return
    _State.signum = signum
    if _State.flag is not None:
        _State.flag.request(signum)
        return
    if _State.on_stop is not None:
        _State.on_stop(signum)
        return
    if _State.finishing:
        return  # raised when the final writes are done (finishing())
    raise Interrupted(signum)


def install_stop_handlers(flag: StopFlag | None = None, on_stop: Callable[[int], None] | None = None) -> None:
    """SIGINT, SIGTERM and SIGHUP stop the run (see the module docstring); main thread only."""
    _State.installed, _State.signum, _State.flag, _State.finishing = True, None, flag, 0
    _State.on_stop = on_stop
    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _on_signal)


@contextlib.contextmanager
def finishing() -> Iterator[None]:
    """Final writes that a stop signal must not cut short; a signal received meanwhile is raised at the end (unless
    the block raised an exception of its own, which then goes on)."""
    before = _State.signum
    _State.finishing += 1
    try:
        yield
    finally:
        _State.finishing -= 1
    if _State.installed and _State.flag is None and _State.on_stop is None and before is None \
            and _State.signum is not None and not _State.finishing:
        raise Interrupted(_State.signum)
