"""Where the gateway's time goes: py-spy's raw (collapsed) stacks, sorted into stages.

``python bench/_profile.py FILE.txt [...]``: for each file (one scenario, as written by
``gateway_bench.py --profile DIR``), the share of the samples of each thread, and of the main
thread's samples per stage. A sample is put in the first stage, in the order below, whose marker
is in the innermost frame that has one (see STAGES).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# (stage, markers): a frame "function (file)" belongs to a stage when a marker is a substring of
# it. A sample goes to the stage of its innermost frame that belongs to one, so time in C code
# (msgspec, a socket write, librdkafka's produce) counts for the Python frame that called it.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("access log", ("(logging/", "(inlet/logs.py)")),
    ("metrics", ("(prometheus_client/",)),
    ("parse body", ("(inlet/codec/bodies.py)",)),
    # msgspec decodes each raw record straight into the schema's Struct: parse + validate in one.
    ("decode+validate", ("_decode_all", "_decode_with_probe", "(inlet/codec/_record_errors.py)")),
    (
        "encode (Avro)",
        ("(inlet/codec/record_codec.py)", "(inlet/codec/_avro_writer.py)", "(fastavro/"),
    ),
    ("produce (enqueue)", ("produce_steps (inlet/kafka.py)", "produce_waiting (inlet/kafka.py)")),
    ("acks -> futures", ("_settle (inlet/kafka.py)", "on_delivery (inlet/kafka.py)", "_settle")),
    ("await/gather", ("(asyncio/tasks.py)", "(asyncio/timeouts.py)")),
    ("handler other", ("(gateway/", "(inlet/", "(registry/", "(uuid.py)", "(hashlib")),
    ("litestar", ("(litestar/",)),
    ("HTTP server", ("(uvicorn/", "(granian/", "(httptools", "(h11/")),
]
_THREAD = re.compile(r"thread \(\w+\): ([^;]+)")


def stage_of(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for stage, markers in STAGES:
            if any(marker in frame for marker in markers):
                return stage
    return "other (event loop, asyncio)"


def summarize(path: Path) -> tuple[Counter[str], Counter[str], int]:
    threads: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        found = _THREAD.search(stack)
        thread = found[1] if found else "?"
        if "_poll_loop (inlet/kafka.py)" in stack:
            thread = "kafka-poll"
        threads[thread] += count
        if thread == "MainThread":
            stages[stage_of(stack)] += count
    return threads, stages, total


def breakdown(path: Path) -> dict[str, dict[str, float]]:
    """Shares of the samples: per thread, and per stage of the main (event loop) thread."""
    threads, stages, total = summarize(path)
    main_total = sum(stages.values()) or 1
    return {
        "threads": {name: round(count / max(total, 1), 3) for name, count in threads.most_common()},
        "main_thread_stages": {
            name: round(count / main_total, 3) for name, count in stages.most_common()
        },
    }


def main() -> None:
    for name in sys.argv[1:]:
        threads, stages, total = summarize(Path(name))
        print(f"{name}: {total} samples (active threads only)")
        for thread, count in threads.most_common():
            print(f"  thread {thread:30s} {count / total:6.1%}")
        main_total = sum(stages.values()) or 1
        for stage, count in stages.most_common():
            print(f"    main: {stage:30s} {count / main_total:6.1%}")


if __name__ == "__main__":
    main()
