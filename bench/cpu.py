"""CPU time spent by the processes of a bench run, read from Linux's /proc.

A bench on this 2-core host shares the CPU between the server, its worker,
the database, the load generator and the fake gateway; a figure that misses
its target says little until it says who used the cores. `Meter` snapshots
each group's CPU seconds (user + system) and the machine's busy time, and
reports the difference per message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone
        return None
    # The command name (field 2) may hold spaces: split after its closing ")".
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) ... utime(11) stime(12).
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    ticks = [int(v) for v in first[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    # guest time is already counted in user: the first eight fields only.
    return (sum(ticks[:8]) - idle) / TICK


@dataclass
class Meter:
    """CPU seconds per named group of processes between `start()` and `stop()`.

    A group is a function returning its pids at the moment (a worker's child
    may start late); "other" is the machine's busy time left over (the
    database server, the kernel, anything else running).
    """

    groups: dict[str, Callable[[], Iterable[int]]]
    spent: dict[str, float] = field(default_factory=dict)
    _start: dict[str, float] = field(default_factory=dict)
    _seen: dict[str, dict[int, float]] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        out = {}
        for name, pids in self.groups.items():
            seen = self._seen.setdefault(name, {})
            for pid in pids():
                seen.setdefault(pid, 0.0)
            for pid in seen:  # a process gone keeps what it last used
                seen[pid] = max(seen[pid], cpu_seconds(pid))
            out[name] = sum(seen.values())
        out["machine"] = busy_seconds()
        return out

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        end = self._read()
        self.spent = {name: end[name] - self._start.get(name, 0.0) for name in end}
        self.spent["other"] = self.spent["machine"] - sum(
            v for k, v in self.spent.items() if k != "machine"
        )
        return self.spent

    def per(self, count: int) -> dict[str, float]:
        """Milliseconds of CPU per unit of work (a message), by group."""
        return {k: 1000 * v / count for k, v in self.spent.items()} if count else {}
