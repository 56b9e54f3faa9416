"""keelwork.core.contracts.jit: the kernels' state lives in a Jit made by the caller."""

from __future__ import annotations

import contextvars

import pytest

from keelwork.core.contracts import jit


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, on or off"):
        jit.Jit("always")  # type: ignore[arg-type]


def test_off_never_counts_nor_loads() -> None:
    off = jit.Jit("off")
    assert off.for_text(10**9) is None and off.checked == 0 and off.loaded() is None


def test_auto_counts_values_before_switching() -> None:
    auto = jit.Jit("auto", load_after=100)
    assert auto.for_text(60) is None and auto.for_text(40) is None
    assert auto.checked == 100
    assert (auto.for_text(1) is not None) == jit.available()


def test_the_active_jit_is_scoped_and_others_are_untouched() -> None:
    on, other = jit.Jit("on"), jit.Jit("auto", load_after=10**12)
    assert jit.for_text(5) is None  # no Jit active: Arrow
    with on.active():
        assert (jit.for_text(5) is not None) == jit.available()
        assert contextvars.Context().run(jit.loaded) is None  # a context that did not enter
    assert jit.loaded() is None and other.checked == 0 and other.loaded() is None
