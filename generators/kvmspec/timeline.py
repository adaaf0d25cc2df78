"""Where the time of a run goes, for measuring kvmspec itself.

With KVMSPEC_TIMELINE=1 in the environment, each step of a command that
marks its steps (generate, headers) prints one line on stderr when it ends:
the process, the milliseconds since kvmspec was imported, the CPU time the
process has used so far (a forked process counts from its fork), and the
step. The processes of one run share the clock, so the lines show what
overlapped. A run without the variable pays one test of a constant per step.
"""

from __future__ import annotations

import os
import sys
import time

ON = os.environ.get("KVMSPEC_TIMELINE") == "1"
_START = time.perf_counter()


def mark(step: str) -> None:
    if ON:
        sys.stderr.write(f"kvmspec timeline: pid {os.getpid()} {1000 * (time.perf_counter() - _START):7.1f} ms "
                         f"(cpu {1000 * time.process_time():5.0f}) {step}\n")
        sys.stderr.flush()
