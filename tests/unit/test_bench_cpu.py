"""services/bench/cpu.py: the CPU a benchmark's part cost, per command and by whom."""

from __future__ import annotations

import os

from services.bench.cpu import CpuUse, Sample, machine_busy_ticks, process_ticks, sample

PROC_STAT = "cpu  100 5 40 9000 7 3 2 1 0 0\ncpu0 50 2 20 4500 3 1 1 0 0 0\n"
PID_STAT = "4242 (python -m x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 30 0 0 20 0 7 0"


def test_the_machine_is_busy_outside_idle_and_iowait() -> None:
    assert machine_busy_ticks(PROC_STAT) == 100 + 5 + 40 + 3 + 2 + 1


def test_a_process_ticks_are_its_user_and_system_time_whatever_its_name() -> None:
    assert process_ticks(PID_STAT) == 250 + 30
    assert process_ticks(PID_STAT.replace("(python -m x)", "(a) b) c)")) == 280


def test_per_command_the_rest_is_what_neither_part_spent() -> None:
    use = CpuUse.between(Sample(10.0, 1.0, 2.0), Sample(13.0, 1.5, 3.0), seconds=2.0)

    assert use == CpuUse(2.0, 3.0, 0.5, 1.0)
    line = use.describe(1000, child="engine", own="clients")
    assert f"1.50 of {os.cpu_count()} cores busy" in line
    assert "engine 1.00, clients 0.50, the rest (Kafka, PostgreSQL, ...) 1.50; all 3.00" in line


def test_without_a_child_only_the_process_and_the_rest_are_told() -> None:
    use = CpuUse.between(Sample(0.0, 0.0, None), Sample(2.0, 1.0, None), seconds=1.0)

    assert use is not None
    assert "naive 2.00, the rest (Kafka, PostgreSQL, ...) 2.00" in use.describe(
        500, child="", own="naive"
    )


def test_a_sample_of_this_process_moves_forward() -> None:
    first = sample(os.getpid())
    sum(i * i for i in range(200_000))
    second = sample(os.getpid())

    assert first is not None
    assert second is not None
    assert second.own >= first.own
    assert second.machine >= first.machine
    assert first.child is not None


def test_per_order_with_the_system_as_the_rest() -> None:
    use = CpuUse(10.0, 19.0, 1.0, None)

    line = use.describe(150, child="", own="the bench", per="complete order", rest="the system")
    assert f"1.90 of {os.cpu_count()} cores busy; per complete order, ms:" in line
    assert "the bench 6.67, the rest (the system) 120.00; all 126.67" in line
