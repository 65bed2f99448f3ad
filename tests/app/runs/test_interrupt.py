"""Stop signals: in a headless run the first raises where the main thread is, the final writes are not cut short,
a worker's signal only sets the shared stop flag, and the window's only calls its stop (real signals, sent to this
process)."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest

from app.runs.interrupt import Interrupted, StopFlag, finishing, install_stop_handlers, signal_number


@pytest.fixture(autouse=True)
def handlers_restored():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_the_first_stop_signal_raises_and_later_ones_are_ignored():
    install_stop_handlers()
    with pytest.raises(Interrupted) as info:
        os.kill(os.getpid(), signal.SIGHUP)
    assert info.value.signum == signal.SIGHUP and signal_number(info.value) == signal.SIGHUP
    os.kill(os.getpid(), signal.SIGTERM)  # a second one: ignored, it must not break the writes the first started
    assert signal_number(KeyboardInterrupt()) == signal.SIGINT


def test_a_signal_during_the_final_writes_is_raised_once_they_are_done():
    install_stop_handlers()
    written = []
    with pytest.raises(Interrupted) as info:
        with finishing():
            os.kill(os.getpid(), signal.SIGTERM)
            written.append("exports")  # not cut short
    assert written == ["exports"] and info.value.signum == signal.SIGTERM


def test_a_workers_signal_only_sets_the_shared_flag():
    flag = StopFlag.shared(mp.get_context("spawn"))
    install_stop_handlers(flag)
    flag.check()  # nothing asked yet
    os.kill(os.getpid(), signal.SIGINT)  # no exception here: the replay sees it at its next frame
    assert flag.signum == signal.SIGINT
    with pytest.raises(Interrupted) as info:
        flag.check()
    assert info.value.signum == signal.SIGINT


def test_the_windows_signal_calls_its_stop_once_and_never_raises():
    stops = []
    install_stop_handlers(on_stop=stops.append)
    os.kill(os.getpid(), signal.SIGTERM)  # no exception: the window closes as by its close button
    os.kill(os.getpid(), signal.SIGINT)   # a second one while it closes: ignored
    with finishing():
        pass  # a finishing block in the window's process raises nothing afterwards
    assert stops == [signal.SIGTERM]
