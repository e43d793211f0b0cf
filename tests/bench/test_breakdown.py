"""The breakdown benchmark's bookkeeping: nested phases are not counted twice, and what runs
inside the reference is the reference's."""
from __future__ import annotations

from bench.breakdown import Timers, imports_something


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_nested_phase_is_taken_out_of_the_outer_one():
    clock = Clock()
    timers = Timers(clock)
    with timers.phase("checks"):
        clock.now += 2
        with timers.phase("kernel_start"):
            clock.now += 5
        clock.now += 1
    assert dict(timers.totals) == {"checks": 3, "kernel_start": 5}


def test_everything_inside_the_reference_counts_as_the_reference():
    clock = Clock()
    timers = Timers(clock)
    with timers.phase("checks"):
        with timers.phase("reference"):
            with timers.phase("cells"):
                clock.now += 7
    assert dict(timers.totals) == {"checks": 0, "reference": 7}


def test_cells_with_a_top_level_import_are_told_apart():
    assert imports_something("import torch\nx = 1")
    assert imports_something("from peft import LoraConfig")
    assert not imports_something("x = 1\ndef f():\n    import os\n")
    assert not imports_something("this is not python (")
