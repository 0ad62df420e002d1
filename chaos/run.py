"""Run scenarios against a real stack and judge each run; the table and the JSON file.

``python -m chaos [--runs N] [--only NAME,…] [--out FILE] [--work DIR]`` (``make chaos``). Scenarios
that need the same stack (broker nodes, gateways, consumers) share one, started once; each run of
each scenario writes to a connector of its own, so runs are judged apart. Exit status 1 when any
run broke an invariant.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

from chaos.readback import read_topic
from chaos.scenarios import SCENARIOS, Marks, Scenario
from chaos.stack import Stack
from chaos.verdict import Verdict, judge
from chaos.writers import Ledger, Load, drive

HERE = Path(__file__).resolve().parent
DRAIN_S = 60.0  # after the load: how long a writer may go on retrying the batch in hand


async def run_scenario(stack: Stack, scenario: Scenario, run: int, load: Load) -> Verdict:
    connector = await asyncio.to_thread(
        stack.create_connector, f"chaos-{scenario.name}-{run}-{uuid.uuid4().hex[:6]}"
    )
    urls = [stack.ingest_path(u, connector) for u in stack.gateway_urls()]
    ledger = Ledger()
    marks = Marks(ledger)
    stop_new, give_up = asyncio.Event(), asyncio.Event()
    errors_before = {name: s.error_lines() for name, s in stack.services.items()}
    load = scenario.load or load
    writers = asyncio.create_task(drive(lambda: urls, load, ledger, stop_new, give_up))
    try:
        await asyncio.sleep(scenario.warmup_s)
        await scenario.fault(stack, connector, marks)
        await asyncio.sleep(scenario.tail_s)
    finally:
        stop_new.set()
        done, _ = await asyncio.wait([writers], timeout=DRAIN_S)
        if not done:
            give_up.set()
            await writers
    loaded = ledger.now()
    _save_attempts(stack.work / f"{scenario.name}-{run}.attempts.jsonl", ledger)
    # The read-back decodes ~20k records/s here: give a big run the time it needs.
    expected = sum(len(ledger.batches[b]) for b in {a.batch for a in ledger.attempts})
    copies = await asyncio.to_thread(
        read_topic,
        stack.bootstrap,
        stack.registry.url,
        stack.admin_token,
        connector.topic,
        120.0 + expected / 5000,
    )
    if scenario.verify is not None:
        await scenario.verify(stack, connector, marks, copies)
    verdict = judge(
        scenario.name,
        run,
        ledger.batches,
        ledger.attempts,
        copies,
        marks.timeline,
        no_200_during_fault=scenario.no_200_during_fault,
    )
    verdict.failures += marks.failures
    verdict.notes = {
        **marks.notes,
        "topic": connector.topic,
        "copies": len(copies),
        "duration_s": round(loaded, 1),
        "fault_at_s": marks.fault_at,
        "recovered_at_s": marks.recovered_at,
        "error_log_lines": {
            name: s.error_lines() - errors_before.get(name, 0) for name, s in stack.services.items()
        },
    }
    return verdict


def _save_attempts(path: Path, ledger: Ledger) -> None:
    with path.open("w") as out:
        for a in ledger.attempts:
            row = {
                "batch": a.batch,
                "writer": a.writer,
                "request_id": a.request_id,
                "sent": round(a.sent, 3),
                "done": round(a.done, 3),
                "outcome": a.outcome,
                "gateway": a.url.split("/v1/")[0],
                "records": ledger.batches[a.batch],
            }
            out.write(json.dumps(row) + "\n")


COLUMNS = [
    ("scenario", "scenario"),
    ("run", "run"),
    ("sent", "sent"),
    ("acked", "acked"),
    ("lost", "lost"),
    ("phantom", "phantom"),
    ("dups_explained", "dups expl."),
    ("dups_unexplained", "dups unexpl."),
    ("non_503_5xx", "5xx≠503"),
    ("hung", "hung"),
    ("unacked_present", "unacked present"),
    ("written_after_503", "503 written"),
    ("fault_to_first_503_s", "fault→503 s"),
    ("recovery_to_first_200_s", "recovery→200 s"),
    ("slowest_200_s", "slowest 200 s"),
    ("passed", "ok"),
]


def table(verdicts: list[Verdict]) -> str:
    rows = [[label for _, label in COLUMNS]]
    for v in verdicts:
        data = v.as_json()
        rows.append(
            [
                ("✓" if data[key] else "✗ " + ", ".join(v.failures))
                if key == "passed"
                else ("-" if data[key] is None else str(data[key]))
                for key, _ in COLUMNS
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


_SUMMED = [
    "sent",
    "acked",
    "lost",
    "phantom",
    "dups_explained",
    "dups_unexplained",
    "non_503_5xx",
    "hung",
]


def _span(values: list[float | None]) -> str:
    seen = sorted(v for v in values if v is not None)
    if not seen:
        return "-"
    return f"{seen[0]:.1f}" if seen[0] == seen[-1] else f"{seen[0]:.1f}-{seen[-1]:.1f}"


def summary(verdicts: list[Verdict]) -> str:
    """One row per scenario over its runs: counts summed, times as ranges (the README's table)."""
    head = [
        "scenario", "runs", "sent", "acked", "lost", "phantom", "dups explained",
        "dups unexplained", "5xx≠503", "hung", "fault→503 s", "recovery→200 s", "slowest 200 s",
        "passed",
    ]  # fmt: skip
    rows = [head, ["---"] * len(head)]
    for name in dict.fromkeys(v.scenario for v in verdicts):
        runs = [v for v in verdicts if v.scenario == name]
        sums = [str(sum(getattr(v, key) for v in runs)) for key in _SUMMED]
        rows.append(
            [
                name,
                str(len(runs)),
                *sums,
                _span([v.fault_to_first_503_s for v in runs]),
                _span([v.recovery_to_first_200_s for v in runs]),
                _span([v.slowest_200_s for v in runs]),
                f"{sum(v.passed for v in runs)}/{len(runs)}",
            ]
        )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


async def run_all(
    scenarios: list[Scenario], runs: int, work: Path, load: Load, out: Path | None
) -> list[Verdict]:
    verdicts: list[Verdict] = []
    shapes = list(dict.fromkeys(s.stack_shape for s in scenarios))  # in the scenarios' order
    for shape in shapes:
        nodes, gateways, consumers, disk_mb = shape
        members = [s for s in scenarios if s.stack_shape == shape]
        stack_dir = work / f"stack-{'-'.join(map(str, shape))}"
        print(f"chaos: starting a stack of {nodes} broker(s), {gateways} gateway(s) in {stack_dir}")
        stack = Stack(stack_dir, nodes, gateways, consumers, disk_mb)
        try:
            await asyncio.to_thread(stack.start)
            for run in range(1, runs + 1):
                for scenario in members:
                    started = time.monotonic()
                    print(f"chaos: {scenario.name} run {run}: {scenario.title}", flush=True)
                    try:
                        verdict = await run_scenario(stack, scenario, run, load)
                    except Exception as exc:  # the run is a failure; the next ones still run
                        verdict = Verdict(scenario.name, run, failures=[f"error: {exc!r}"[:300]])
                    verdicts.append(verdict)
                    status = "ok" if verdict.passed else "FAILED " + ", ".join(verdict.failures)
                    print(
                        f"chaos: {scenario.name} run {run}: {status} "
                        f"({time.monotonic() - started:.0f} s, sent {verdict.sent}, "
                        f"outcomes {verdict.outcomes})",
                        flush=True,
                    )
                    if out is not None:
                        _write(out, verdicts, load)
        finally:
            await asyncio.to_thread(stack.stop)
    return verdicts


def _write(out: Path, verdicts: list[Verdict], load: Load) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load": load.__dict__,
        "runs": [v.as_json() for v in verdicts],
    }
    out.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--quick", action="store_true", help="only the scenarios make test runs")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--work", type=Path, default=None, help="keep logs here (default: temp)")
    parser.add_argument("--writers", type=int, default=Load.writers)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--tables", type=Path, help="only print the tables of a results file")
    args = parser.parse_args(argv)
    if args.tables:
        names = {f.name for f in dataclasses.fields(Verdict)}
        runs = json.loads(args.tables.read_text())["runs"]
        kept = [Verdict(**{k: v for k, v in run.items() if k in names}) for run in runs]
        print(table(kept), summary(kept), sep="\n\n")
        return 0
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:22} {s.title}")
        return 0
    chosen = SCENARIOS
    if args.only:
        names = set(args.only.split(","))
        unknown = names - {s.name for s in SCENARIOS}
        if unknown:
            parser.error(f"unknown scenarios: {sorted(unknown)} (see --list)")
        chosen = [s for s in SCENARIOS if s.name in names]
    if args.quick:
        chosen = [s for s in chosen if s.quick]
    work = args.work or Path(tempfile.mkdtemp(prefix="inlet-chaos-"))
    load = Load(writers=args.writers)
    verdicts = asyncio.run(run_all(chosen, args.runs, work, load, args.out))
    print(table(verdicts))
    print()
    print(summary(verdicts))
    print(f"chaos: results in {args.out}; logs and attempts in {work}")
    return 0 if all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
