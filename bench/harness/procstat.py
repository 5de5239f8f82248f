"""What the kernel says a process used: CPU time and resident memory, from /proc."""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def cpu_ticks(pid: int) -> int:
    """utime + stime of the whole process (all its threads, live and exited), in clock ticks.

    Fields 14 and 15 of /proc/<pid>/stat. The command name (field 2) may hold spaces or
    parentheses, so the fields are counted from the last ')'.
    """
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): field 14 is fields[11], field 15 is fields[12]
    return int(fields[11]) + int(fields[12])


def sched_ns(pid: int) -> int:
    """On-CPU time of the process's live threads in nanoseconds (/proc/<pid>/task/*/schedstat).

    Nanosecond resolution, but threads that exited are not counted: only a cross-check of
    cpu_ticks for servers whose threads all live through a measurement.
    """
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size (/proc/<pid>/statm, field 2, in pages)."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


class CpuMeter:
    """CPU used by a process between start() and stop()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ticks = 0
        self.ns = 0

    def start(self) -> CpuMeter:
        self._t0 = cpu_ticks(self.pid)
        self._n0 = sched_ns(self.pid)
        return self

    def stop(self) -> CpuMeter:
        self.ticks = cpu_ticks(self.pid) - self._t0
        self.ns = sched_ns(self.pid) - self._n0
        return self

    @property
    def seconds(self) -> float:
        return self.ticks / CLK_TCK

    @property
    def sched_seconds(self) -> float:
        return self.ns / 1e9
