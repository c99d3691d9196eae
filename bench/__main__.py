"""Run every bench/*.py module's run() (or those named on the command line) and report."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import sys
import time
from pathlib import Path

import bench
from novic.io import write_json


def discover() -> list[str]:
    """Names of the benchmark modules in this package."""
    modules = pkgutil.iter_modules(bench.__path__)
    return sorted(m.name for m in modules if not m.name.startswith("_"))


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(name: str, results: dict[str, object]) -> None:
    width = max(map(len, results), default=0)
    print(f"\n== {name} ==")
    for key, value in results.items():
        print(f"  {key:<{width}}  {format_value(value)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--out", default="results/bench", help="folder for NAME.json")
    parser.add_argument(
        "--devices",
        default="cpu,cuda",
        help="where to measure, comma-separated (cuda is skipped, and said so, without a GPU)",
    )
    args = parser.parse_args(argv)
    bench.DEVICES = set(args.devices.split(","))
    if bench.DEVICES - {"cpu", "cuda"}:
        parser.error(f"--devices {args.devices!r}: cpu and/or cuda")
    available = discover()
    unknown = sorted(set(args.names) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available}")
    modules = {name: importlib.import_module(f"bench.{name}") for name in args.names or available}
    order = sorted(modules, key=lambda name: bool(getattr(modules[name], "NEEDS", ())))
    failed, done = [], {}
    for name in order:
        start = time.perf_counter()
        needs = getattr(modules[name], "NEEDS", ())
        try:
            if needs:
                missing = [n for n in needs if n not in done]
                if missing:
                    raise RuntimeError(f"needs the results of {missing} in the same run")
                results = modules[name].run({n: done[n] for n in needs})
            else:
                results = modules[name].run()
        except Exception as exc:  # report and go on with the other benchmarks
            print(f"\n== {name} == FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        results = dict(results)
        done[name] = results
        results["bench_seconds"] = round(time.perf_counter() - start, 2)
        results["machine"] = f"{platform.machine()} {platform.processor() or ''}".strip()
        print_table(name, results)
        write_json(results, Path(args.out) / f"{name}.json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
