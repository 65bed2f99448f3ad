import pytest

from app.ui.state.meters import RateMeter, RollingMedian


def test_rate_meter_counts_intervals_in_the_window():
    m = RateMeter(window_s=2.0)
    assert m.rate(now=0.0) == 0.0
    for i in range(11):
        m.push(now=i * 0.1)  # 10 intervals over 1 s
    assert m.rate(now=1.0) == pytest.approx(10.0)
    assert m.rate(now=10.0) == 0.0  # a paused source reads 0, not a stale rate


def test_rolling_median():
    m = RollingMedian(maxlen=3)
    assert m.value() is None
    for v in (1, 100, 3, 4):
        m.push(v)
    assert m.value() == 4  # median of the last three: 100, 3, 4
