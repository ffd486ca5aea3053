"""A statistical CPU profiler for the mesh's processes, for benchmarks only.

On the PYTHONPATH of a process (tools/bench/step_up_throughput.py's
`--profile DIR` puts this directory there) with BENCH_PROFILE_DIR set, every
5 ms of the process's CPU time (ITIMER_PROF) samples the stack of each of its
Python threads that ran since the last sample, weighted by the CPU it used
meanwhile (/proc/self/task/<tid>/schedstat), from when BENCH_PROFILE_DIR/start
exists, and writes the totals to
BENCH_PROFILE_DIR/<module>.<pid>.txt every few seconds: one line per stack,
"microseconds<TAB>outer;...;inner" (function@file:line), for
tools/bench/profile_report.py. A thread's CPU since the last sample is put
on the stack it is in at the sample (a statistical attribution); the
process's CPU in threads without Python frames (gRPC's, ONNX Runtime's) is
one line of its own. The samples see only Python frames: time in
C (ONNX Runtime, OpenSSL, libpq) counts at the Python line that called it.
Nothing here runs unless BENCH_PROFILE_DIR is set.
"""

from __future__ import annotations

import os

DIRECTORY = os.environ.get("BENCH_PROFILE_DIR")

if DIRECTORY:
    FOLDER: str = DIRECTORY
    import atexit
    import signal
    import sys
    import threading
    import time
    from collections import Counter
    from pathlib import Path
    from types import FrameType

    # The process's CPU when counting began: at the first sample that finds
    # DIRECTORY/start (the benchmark makes it once the mesh is up and enrolled:
    # start-up and model loading are not counted).
    started_ns: list[int] = []
    INTERVAL = 0.005
    WRITE_EVERY = 5.0
    # stack -> microseconds of CPU of the threads seen in it
    counts: Counter[str] = Counter()
    # thread id -> its CPU nanoseconds at the last sample (/proc schedstat)
    ran: dict[int, int] = {}
    last_write = [time.monotonic()]

    def output() -> Path:
        """DIRECTORY/<module>.<pid>.txt (known once __main__ runs, not while
        site imports this)."""
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec.name.removesuffix(".__main__") if spec else Path(sys.argv[0]).stem
        return Path(FOLDER) / f"{module}.{os.getpid()}.txt"

    def cpu_ns(native_id: int) -> int:
        try:
            with open(f"/proc/self/task/{native_id}/schedstat") as stat:
                return int(stat.read().split()[0])
        except OSError:
            return 0

    def stack_of(frame: FrameType | None) -> str:
        names = []
        while frame is not None:
            code = frame.f_code
            names.append(f"{code.co_name}@{code.co_filename}:{frame.f_lineno}")
            frame = frame.f_back
        return ";".join(reversed(names))

    def write() -> None:
        # CPU of threads Python does not know (gRPC's, ONNX Runtime's pools).
        other = (time.process_time_ns() - started_ns[0]) // 1000 - sum(counts.values())
        lines = f"{max(other, 0)}\t(threads without Python frames)@-:0\n"
        lines += "".join(f"{n}\t{s}\n" for s, n in counts.most_common())
        path = output()
        temporary = path.with_suffix(".tmp")
        temporary.write_text(lines)
        temporary.replace(path)

    def sample(_signum: int, interrupted: FrameType | None) -> None:
        if not started_ns:
            if not os.path.exists(os.path.join(FOLDER, "start")):
                return
            started_ns.append(time.process_time_ns())
        me = sys._getframe()
        frames = sys._current_frames()
        for thread in threading.enumerate():
            if thread.ident is None or thread.native_id is None:
                continue
            now = cpu_ns(thread.native_id)
            used = now - ran.get(thread.native_id, now)
            ran[thread.native_id] = now
            frame = frames.get(thread.ident)
            if frame is me:  # the main thread, where this handler runs
                frame = interrupted
            if used > 0 and frame is not None:
                counts[stack_of(frame)] += used // 1000
        if time.monotonic() - last_write[0] > WRITE_EVERY:
            last_write[0] = time.monotonic()
            write()

    def finish() -> None:
        # Before the interpreter resets its signal handlers: a SIGPROF after
        # that would end the process ("Profiling timer expired").
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        if started_ns:
            write()

    signal.signal(signal.SIGPROF, sample)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)
    atexit.register(finish)
