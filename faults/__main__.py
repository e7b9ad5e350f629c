"""`python -m faults`: the long randomized fault run (`make faults`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from faults import partition
from faults.suite import FAULTS, run_suite, summary_table
from outcomes.runner import BIN


def main(argv: list[str] | None = None) -> int:
    """Run the chosen faults, print the summary table, exit non-zero if an invariant broke."""
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument(
        "--faults",
        default=",".join([*FAULTS, *(() if partition.available() else partition.FAULTS)]),
        help="comma-separated codes: F1-F10, and P1-P5 (partitions between test hosts, root only)",
    )
    parser.add_argument("--hold", type=float, default=45.0, help="seconds a partition lasts")
    parser.add_argument(
        "--scale-out",
        type=float,
        default=0,
        metavar="SECONDS",
        help="instead: the same load on one worker host, then two, for SECONDS each",
    )
    parser.add_argument("--rounds", type=int, default=3, help="random fault points per fault")
    parser.add_argument("--scale", type=int, default=40, help="copies of the demo data set")
    parser.add_argument(
        "--busy", type=float, default=4.0, help="max seconds of load around a fault"
    )
    parser.add_argument("--out", type=Path, default=Path("var/faults/summary.md"))
    args = parser.parse_args(argv)
    codes = [c.strip().upper() for c in args.faults.split(",") if c.strip()]
    splits = [c for c in codes if c in partition.FAULTS]
    unknown = [c for c in codes if c not in FAULTS and c not in splits]
    if unknown:
        known = ", ".join([*FAULTS, *partition.FAULTS])
        parser.error(f"unknown faults {unknown}; choose from {known}")
    if not (BIN / "outcomes").exists():
        parser.error("run from the project's environment (make faults)")
    if (splits or args.scale_out) and partition.available():
        parser.error(str(partition.available()))
    report = lambda line: print(line, flush=True)  # noqa: E731
    if args.scale_out:
        table = partition.scale_out_table(partition.measure_scale_out(seconds=args.scale_out))
        print(table)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name("scale-out.md").write_text(table + "\n")
        return 0
    print(f"fault run, seed {args.seed}: {', '.join(codes)}", flush=True)
    started = time.monotonic()
    outcomes: list = run_suite(
        [c for c in codes if c in FAULTS],
        seed=args.seed,
        rounds=args.rounds,
        scale=args.scale,
        busy=args.busy,
        report=report,
    )
    tables = [summary_table(outcomes)] if outcomes else []
    if splits:
        parted = partition.run_partitions(splits, rounds=args.rounds, hold=args.hold, report=report)
        tables.append(partition.summary_table(parted))
        outcomes += parted
    table = "\n\n".join(tables)
    took = time.monotonic() - started
    print(f"\n{table}\n\nseed {args.seed}, {took:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"{table}\n\nseed {args.seed}, {took:.0f} s\n")
    failed = [o for o in outcomes for c in o.results if not o.held(c)]
    for outcome in {id(o): o for o in failed}.values():
        for code, results in outcome.results.items():
            for ok, detail in results:
                if not ok:
                    name = getattr(outcome, "code", None) or outcome.fault.code
                    print(f"{name} {code}: {detail}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
