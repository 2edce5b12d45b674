"""Each λ schedule, its validation and its checkpoint state."""

import pytest

from sf_kickstart.kickstart.schedules import KickstartSchedule, ScheduleError


def test_none_is_zero():
    assert KickstartSchedule("none", 3.0).alpha(0) == 0.0


def test_constant():
    s = KickstartSchedule("constant", 2.0)
    assert s.alpha(0) == 2.0 and s.alpha(1e9) == 2.0


def test_linear_reaches_zero_and_stays():
    s = KickstartSchedule("linear", 2.0, end_frames=1000)
    assert s.alpha(0) == 2.0
    assert s.alpha(250) == pytest.approx(1.5)
    assert s.alpha(1000) == 0.0
    assert s.alpha(5000) == 0.0


def test_exponential_decay_and_floor():
    s = KickstartSchedule("exponential", 1.0, decay=0.5, decay_frames=100, floor=0.1)
    assert s.alpha(0) == 1.0
    assert s.alpha(100) == pytest.approx(0.5)
    assert s.alpha(200) == pytest.approx(0.25)
    assert s.alpha(10_000) == pytest.approx(0.1)


def test_pbt_scale_replaces_lambda0_and_never_negative():
    s = KickstartSchedule("linear", 1.0, end_frames=100)
    assert s.alpha(50, scale=4.0) == pytest.approx(2.0)
    assert s.alpha(50, scale=0.0) == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="cosine"), "expected one of"),
        (dict(kind="constant", lambda0=-1.0), ">= 0"),
        (dict(kind="constant", lambda0=float("nan")), "finite"),
        (dict(kind="linear", end_frames=0), "kickstart_end_frames"),
        (dict(kind="exponential", decay=1.5), "decay"),
        (dict(kind="exponential", decay_frames=0), "decay_frames"),
        (dict(kind="exponential", lambda0=1.0, floor=2.0), "floor"),
    ],
)
def test_impossible_values_raise(kwargs, match):
    with pytest.raises(ScheduleError, match=match):
        KickstartSchedule(**kwargs)


def test_state_roundtrip():
    s = KickstartSchedule("exponential", 1.5, decay=0.9, decay_frames=10, floor=0.2)
    s2 = KickstartSchedule.from_state_dict(s.state_dict())
    assert s2 == s and s2.alpha(123) == s.alpha(123)
