"""How long a thread waits for the GIL while an event loop does CPU work in steps.

Run: ``uv run python bench/gil_handoff_bench.py [--seconds 3] [--step-ms 1] [--rounds 3]``
(never part of ``make test``). It is the gateway's case without Kafka: the loop runs steps of
``--step-ms`` of pure Python with ``await asyncio.sleep(0)`` between them (as ``run_yielding``
drives a large body's parsing and encoding), while another thread, like the producer's poll
thread, repeatedly blocks for 2 ms without the GIL and then needs it back (a delivery report).
It prints that thread's wait for the GIL (p50 / p99 / max), with CPython's default switch
interval and with the gateway's (``gateway/app.py`` ``SWITCH_INTERVAL_S``), in turn.

Each wait is also given net of the time either thread spent runnable but waiting for a CPU
(``/proc/self/task/<tid>/schedstat``), which is the machine's share, not the GIL's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

from gateway.app import SWITCH_INTERVAL_S

_BLOCKED_S = 0.002


def _runqueue_s(tid: int) -> float:
    """Time the thread spent runnable, waiting for a CPU (the second field of schedstat)."""
    try:
        return int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[1]) / 1e9
    except OSError:  # no schedstat: the wait is given whole
        return 0.0


def _busy(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def measure(interval_s: float, seconds: float, step_s: float) -> dict[str, float]:
    sys.setswitchinterval(interval_s)
    loop_tid = threading.get_native_id()
    waits: list[tuple[float, float]] = []
    stop = threading.Event()

    def poller() -> None:
        me = threading.get_native_id()
        while not stop.is_set():
            started, mine, loops = time.perf_counter(), _runqueue_s(me), _runqueue_s(loop_tid)
            time.sleep(_BLOCKED_S)  # without the GIL; then it needs it back
            wait = time.perf_counter() - started - _BLOCKED_S
            machine = _runqueue_s(me) - mine + _runqueue_s(loop_tid) - loops
            waits.append((wait, max(0.0, wait - machine)))

    async def steps() -> int:
        count = 0
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            _busy(step_s)
            count += 1
            await asyncio.sleep(0)
        return count

    thread = threading.Thread(target=poller)
    thread.start()
    try:
        count = asyncio.run(steps())
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(0.005)
    raw = sorted(w for w, _ in waits)
    net = sorted(n for _, n in waits)

    def pct(values: list[float], fraction: float) -> float:
        return values[min(len(values) - 1, int(fraction * len(values)))] * 1000

    return {
        "steps": count,
        "waits": len(raw),
        "p50_ms": pct(raw, 0.5),
        "p99_ms": pct(raw, 0.99),
        "max_ms": raw[-1] * 1000,
        "net_p99_ms": pct(net, 0.99),
        "net_max_ms": net[-1] * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--step-ms", type=float, default=1.0, help="CPU per step")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'interval ms':>11} {'steps':>6} {'waits':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'net p99':>8} {'net max':>8}"
    )
    for _ in range(args.rounds):
        for interval in (0.005, SWITCH_INTERVAL_S):
            found = measure(interval, args.seconds, args.step_ms / 1000)
            print(
                f"{interval * 1000:>11} {found['steps']:>6} {found['waits']:>6} "
                f"{found['p50_ms']:>7.2f} {found['p99_ms']:>7.2f} {found['max_ms']:>7.1f} "
                f"{found['net_p99_ms']:>8.2f} {found['net_max_ms']:>8.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
