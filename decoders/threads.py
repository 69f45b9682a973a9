"""How many llama.cpp threads to run now: the cores this process may use that nobody else is using.

llama.cpp splits every step of a token across its threads and makes them wait
for each other at each step. When another process holds one of the cores, one
of the threads is off the CPU for a scheduler slice at a time while the others
spin, so a thread count equal to the core count runs many times slower than
one thread (issue #22: 914 s against 27 s to decode one passage on 2 busy
cores). ``pick()`` therefore re-decides, cheaply, each time a passage or a
question starts:

1. ``$HASHMEM_LLM_THREADS`` (a whole number ≥ 1, or ``auto``) overrides everything;
2. the usable cores: ``os.sched_getaffinity(0)``, capped by a cgroup v2 CPU
   quota (``/sys/fs/cgroup/cpu.max``) when there is one;
3. minus the cores other processes kept busy: the non-idle ticks of those
   cores in ``/proc/stat`` less this process's own CPU time, over the interval
   since the previous pick (normally the previous passage), so a pick costs two
   small reads and no waiting. The first pick of a process, or one more than
   ``STALE_S`` after the previous, samples ``SAMPLE_S`` instead (the 1-minute
   load average lags by far too much to follow a job that starts or stops);
4. a core counts as idle when at least ``1 − SLACK`` of it was; the result is
   clamped to [1, usable cores].

Off Linux (no ``/proc/stat``) step 3 falls back to the 1-minute load average.

What it does not do: pin threads to cores, tell hyperthread siblings or
efficiency cores apart, or change any result. The ``llm`` tier's bodies stay
bit-exact whatever it picks, because llama.cpp's logits are identical at 1 and
2 threads (tests/test_llmcodec.py codes under a busy core and compares bytes).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from hashmem.memory import ConfigError

ENV = "HASHMEM_LLM_THREADS"
SAMPLE_S = 0.05  # a fresh sample: 5 ticks per core at USER_HZ 100
MIN_WINDOW_S = 0.1  # a shorter interval since the last pick keeps its decision
STALE_S = 2.0  # an older baseline says nothing about now: sample afresh
SLACK = 0.25  # a core at most this busy still counts as idle
MAX_THREADS = 512


@dataclass(frozen=True)
class CpuSample:
    """CPU accounting at one instant.

    Attributes:
        wall: ``time.monotonic()`` seconds.
        busy: non-idle ticks (user, nice, system, irq, softirq, steal) summed over the usable CPUs.
        total: all ticks summed over the usable CPUs.
        own: this process's CPU seconds (every thread, llama.cpp's included).
    """

    wall: float
    busy: int
    total: int
    own: float


def parse_proc_stat(text: str, cpus: Collection[int]) -> tuple[int, int]:
    """``(busy, total)`` ticks summed over cpus, from the text of ``/proc/stat``.

    Raises:
        ValueError: none of cpus has a ``cpuN`` line.
    """
    busy = total = seen = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        f = [int(v) for v in rest.split()]
        idle = f[3] + (f[4] if len(f) > 4 else 0)  # idle + iowait
        all_ = sum(f[:8])  # guest time is already inside user
        busy, total, seen = busy + all_ - idle, total + all_, seen + 1
    if not seen:
        raise ValueError(f"/proc/stat has no line for the CPUs {sorted(cpus)}")
    return busy, total


def busy_elsewhere(before: CpuSample, after: CpuSample, *, n_cpus: int, hz: float) -> float:
    """Cores that other processes kept busy between two samples (≥ 0)."""
    ticks_per_cpu = (after.total - before.total) / n_cpus
    if ticks_per_cpu <= 0:
        return 0.0
    others = (after.busy - before.busy) - (after.own - before.own) * hz
    return max(0.0, others / ticks_per_cpu)


def threads_for(cores: int, busy: float, *, slack: float = SLACK) -> int:
    """Threads for ``cores`` usable cores of which ``busy`` are in use elsewhere: the idle ones, in [1, cores]."""
    return max(1, min(cores, math.floor(cores - busy + slack)))


def env_threads() -> int | None:
    """``$HASHMEM_LLM_THREADS`` as a thread count; None when unset, empty or ``auto``.

    Raises:
        ConfigError: the value is not a whole number from 1 to ``MAX_THREADS`` or ``auto``.
    """
    raw = os.environ.get(ENV, "").strip()
    if raw.lower() in ("", "auto"):
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_THREADS:
        raise ConfigError(f"${ENV} must be a whole number of llama.cpp threads from 1 to {MAX_THREADS}, "
                          f"or 'auto', got {raw!r}; unset it to let hashmem choose from the idle cores")
    return n


def usable_cpus() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return set(range(os.cpu_count() or 1))


def cgroup_cores(path: str = "/sys/fs/cgroup/cpu.max") -> int | None:
    """Cores a cgroup v2 CPU quota allows (``quota period`` rounded up); None without a quota."""
    try:
        with open(path) as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def _read_proc_stat() -> str:
    with open("/proc/stat") as f:
        return f.read()


class ThreadPicker:
    """Decides llama.cpp's thread count from the idle usable cores (see the module's docstring).

    Args:
        cpus: the usable CPU ids (default: this process's affinity).
        read_stat: returns the text of ``/proc/stat`` (raises OSError where there is none).
        clock: monotonic seconds. cpu_time: this process's CPU seconds. sleep: waits seconds.
        loadavg: the 1-minute load average, used when ``read_stat`` fails.
    """

    def __init__(self, *, cpus: Collection[int] | None = None, read_stat: Callable[[], str] = _read_proc_stat,
                 clock: Callable[[], float] = time.monotonic, cpu_time: Callable[[], float] = time.process_time,
                 sleep: Callable[[float], None] = time.sleep,
                 loadavg: Callable[[], float] = lambda: os.getloadavg()[0]) -> None:
        self.cpus = set(cpus) if cpus is not None else usable_cpus()
        quota = cgroup_cores() if cpus is None else None
        self.cores = min(len(self.cpus), quota or len(self.cpus))
        self.hz = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        self._read_stat, self._clock, self._cpu_time, self._sleep, self._loadavg = (
            read_stat, clock, cpu_time, sleep, loadavg)
        self._last: CpuSample | None = None
        self.last_threads: int | None = None
        self.last_busy: float | None = None  # cores busy elsewhere at the last decision
        self._lock = threading.Lock()

    def _sample(self) -> CpuSample:
        busy, total = parse_proc_stat(self._read_stat(), self.cpus)
        return CpuSample(self._clock(), busy, total, self._cpu_time())

    def pick(self) -> int:
        """The thread count for the next passage or question.

        Raises:
            ConfigError: ``$HASHMEM_LLM_THREADS`` is set to a bad value.
        """
        forced = env_threads()
        if forced is not None:
            return forced
        with self._lock:
            try:
                busy = self._busy_now()
            except (OSError, ValueError):  # no /proc/stat: the load average, which lags
                busy = max(0.0, self._loadavg() - 1.0)  # the caller is one of the runnable
            if busy is not None:
                self.last_busy = busy
                self.last_threads = threads_for(self.cores, busy)
            return self.last_threads

    def _busy_now(self) -> float | None:
        """Cores busy elsewhere since the last sample; None: too soon to tell, keep the last decision."""
        now = self._clock()
        if self._last is not None and self.last_threads is not None and now - self._last.wall < MIN_WINDOW_S:
            return None
        if self._last is None or now - self._last.wall > STALE_S:
            self._last = self._sample()
            self._sleep(SAMPLE_S)
        after = self._sample()
        busy = busy_elsewhere(self._last, after, n_cpus=len(self.cpus), hz=self.hz)
        self._last = after
        return busy


_picker: ThreadPicker | None = None
_picker_lock = threading.Lock()


def pick() -> int:
    """The process's thread count for llama.cpp now (one shared ``ThreadPicker``).

    Raises:
        ConfigError: ``$HASHMEM_LLM_THREADS`` is set to a bad value.
    """
    global _picker
    with _picker_lock:
        if _picker is None:
            _picker = ThreadPicker()
    return _picker.pick()
