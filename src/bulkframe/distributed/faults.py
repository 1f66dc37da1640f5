"""A fault-injection hook for tests of the distributed writers (off unless configured).

When the environment variable ``BULKFRAME_DISTRIBUTED_FAULTS`` names a JSON file that
exists, each write task reads it at its check points: ``{"part": 1, "at": "staged",
"times": 1, "how": "exit", "markers": "/tmp/dir"}`` makes the task of part 1 die
(``os._exit``, like a killed worker) or raise (``"how": "raise"``) after it staged its
rows, ``times`` times in all (counted by marker files in ``markers``; ``times: 0``
means always).  Without the variable (production) nothing is read.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger("bulkframe")

ENV = "BULKFRAME_DISTRIBUTED_FAULTS"


class InjectedFault(RuntimeError):
    """Raised by a task at a configured check point (tests only)."""


def check(part: int, at: str) -> None:
    """Fail here if the fault file says so (see the module docstring)."""
    path = os.environ.get(ENV)
    if not path or not Path(path).exists():
        return
    try:
        plan = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return
    if plan.get("part") != part or plan.get("at") != at:
        return
    times = int(plan.get("times", 1))
    if times:
        markers = Path(plan["markers"])
        markers.mkdir(parents=True, exist_ok=True)
        for n in range(times):
            try:  # O_EXCL: exactly one task attempt claims each failure
                os.close(os.open(markers / f"part{part}-{at}-{n}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                break
            except FileExistsError:
                continue
        else:
            return
    log.warning("injected fault: part %d at %s (%s)", part, at, plan.get("how", "exit"))
    if plan.get("how", "exit") == "raise":
        raise InjectedFault(f"injected fault in part {part} at {at}")
    os._exit(17)
