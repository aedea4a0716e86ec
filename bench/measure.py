#!/usr/bin/env python3
"""Run a command as the child of this small process; write its wall time, CPU and peak RSS.

    python bench/measure.py RESULT.json COMMAND [ARG...]

Why a separate launcher: on Linux a child's ``ru_maxrss`` (from wait4, or RUSAGE_CHILDREN) is
at least the resident size of the process it was forked from, because exec() folds the old
address space's high-water mark into the new one. A benchmark holding a 95 MB backlog would
report every child as >= 95 MB (a `python -c pass` child of a 300 MB parent reports 313 MB).
Forking from this ~10 MB interpreter instead keeps the figure the command's own.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    result, argv = sys.argv[1], sys.argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    started_at, started = time.time(), time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _pid, status, usage = os.wait4(pid, 0)
    figures = {
        "started_at": started_at,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss,
        "returncode": os.waitstatus_to_exitcode(status),
    }
    with open(result, "w", encoding="utf-8") as out:
        json.dump(figures, out)
    return 0 if figures["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
