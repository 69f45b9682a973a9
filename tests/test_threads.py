"""The llama.cpp thread picker: idle cores from a fake /proc/stat, the env override, its bad values."""

from __future__ import annotations

import pytest

from hashmem.decoders import threads
from hashmem.memory import ConfigError


def stat(*cpus: tuple[int, int]) -> str:
    """A /proc/stat text with one ``cpuN`` line per (busy, idle) tick pair (busy as user time)."""
    lines = [f"cpu  {sum(b for b, _ in cpus)} 0 0 {sum(i for _, i in cpus)} 0 0 0 0 0 0"]
    lines += [f"cpu{n} {b} 0 0 {i} 0 0 0 0 0 0" for n, (b, i) in enumerate(cpus)]
    return "\n".join(lines + ["intr 1 2 3", "ctxt 99"]) + "\n"


class FakeMachine:
    """Two CPUs whose ticks advance by hand; this process's CPU time too."""

    def __init__(self) -> None:
        self.now, self.own = 100.0, 0.0
        self.cpus = [[0, 0], [0, 0]]
        self.sleeps: list[float] = []
        self.background = 0.0  # cores busy elsewhere while the picker sleeps

    def run(self, seconds: float, *, busy_elsewhere: float, own: float = 0.0) -> None:
        """Advance time: ``busy_elsewhere`` cores used by others, ``own`` by this process (≤ 2 in all)."""
        ticks, used = round(seconds * 100), busy_elsewhere + own
        for k, cpu in enumerate(self.cpus):
            share = min(1.0, max(0.0, used - k))  # fill cpu0 first, then cpu1
            cpu[0] += round(ticks * share)
            cpu[1] += ticks - round(ticks * share)
        self.now += seconds
        self.own += seconds * own

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.run(seconds, busy_elsewhere=self.background)

    def picker(self) -> threads.ThreadPicker:
        p = threads.ThreadPicker(cpus={0, 1}, read_stat=lambda: stat(*map(tuple, self.cpus)),
                                 clock=lambda: self.now, cpu_time=lambda: self.own, sleep=self.sleep)
        p.hz = 100.0
        return p


def test_parse_proc_stat_sums_the_usable_cpus_only():
    text = "cpu  9 9 9 9\ncpu0 10 1 2 100 5 0 0 3 0 0\ncpu1 7 0 0 50 0 0 0 0 0 0\ncpu2 1 0 0 1 0 0 0 0 0 0\n"
    assert threads.parse_proc_stat(text, {0, 1}) == (10 + 1 + 2 + 3 + 7, 10 + 1 + 2 + 100 + 5 + 3 + 7 + 50)
    assert threads.parse_proc_stat(text, {1}) == (7, 57)
    with pytest.raises(ValueError, match=r"no line for the CPUs \[5\]"):
        threads.parse_proc_stat(text, {5})


@pytest.mark.parametrize(("cores", "busy", "expected"), [
    (2, 0.0, 2), (2, 0.2, 2), (2, 0.5, 1), (2, 1.0, 1), (2, 2.0, 1), (2, 7.0, 1),
    (1, 0.0, 1), (8, 2.9, 5), (8, 0.0, 8),
])
def test_threads_for_counts_the_idle_cores_within_one_and_the_cores(cores, busy, expected):
    assert threads.threads_for(cores, busy) == expected


def test_the_first_pick_samples_briefly_and_sees_a_busy_core():
    m = FakeMachine()
    m.background = 1.0
    p = m.picker()
    assert p.pick() == 1
    assert m.sleeps == [threads.SAMPLE_S]
    assert p.last_busy == pytest.approx(1.0)


def test_later_picks_measure_the_last_passage_without_waiting_and_discount_this_process():
    m = FakeMachine()
    p = m.picker()
    assert p.pick() == 2  # idle
    m.run(1.0, busy_elsewhere=0.0, own=2.0)  # a passage on both cores: ours, not busy elsewhere
    assert p.pick() == 2
    m.run(1.0, busy_elsewhere=1.0, own=1.0)  # a background job starts
    assert p.pick() == 1
    m.run(1.0, busy_elsewhere=0.0, own=1.0)  # it stops
    assert p.pick() == 2
    assert m.sleeps == [threads.SAMPLE_S]  # only the first pick waited


def test_a_pick_right_after_another_keeps_its_decision_and_a_stale_one_samples_afresh():
    m = FakeMachine()
    p = m.picker()
    assert p.pick() == 2
    m.run(0.02, busy_elsewhere=2.0)  # far too short to tell
    assert p.pick() == 2 and len(m.sleeps) == 1
    m.run(60.0, busy_elsewhere=0.0)  # a long quiet gap, then a job starts just now
    m.background = 1.0
    assert p.pick() == 1 and len(m.sleeps) == 2


def test_without_proc_stat_the_load_average_decides():
    def no_stat() -> str:
        raise OSError("no /proc/stat")

    p = threads.ThreadPicker(cpus={0, 1}, read_stat=no_stat, loadavg=lambda: 1.1)
    assert p.pick() == 2  # the caller itself is the one runnable process
    p = threads.ThreadPicker(cpus={0, 1}, read_stat=no_stat, loadavg=lambda: 2.0)
    assert p.pick() == 1


def test_the_real_machine_gives_a_count_within_the_usable_cores():
    p = threads.ThreadPicker()
    assert 1 <= p.pick() <= len(threads.usable_cpus())
    assert 1 <= threads.pick() <= len(threads.usable_cpus())


@pytest.mark.parametrize(("value", "expected"), [("", None), ("auto", None), (" AUTO ", None), ("1", 1),
                                                 (" 3 ", 3)])
def test_the_env_override(monkeypatch, value, expected):
    monkeypatch.setenv(threads.ENV, value)
    assert threads.env_threads() == expected
    if expected is not None:
        m = FakeMachine()
        m.background = 2.0
        assert m.picker().pick() == expected and not m.sleeps  # overrides the measurement


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "9999"])
def test_bad_env_values_are_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(ConfigError, match=rf"HASHMEM_LLM_THREADS must be a whole number.*got '{value}'"):
        threads.pick()


def test_cgroup_quota(tmp_path):
    f = tmp_path / "cpu.max"
    f.write_text("max 100000\n")
    assert threads.cgroup_cores(str(f)) is None
    f.write_text("150000 100000\n")
    assert threads.cgroup_cores(str(f)) == 2
    assert threads.cgroup_cores(str(tmp_path / "absent")) is None
