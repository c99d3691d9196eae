"""What a pipeline run's GPU jobs ran on: the check behind `make gpu-smoke`.

The jobs that ask for a GPU (resources gpu=1) record the device they ran on in their outputs:
each embedding shard in its Parquet metadata (novic.device), each training chunk in the
decoder's metrics.jsonl, each evaluation in its JSON (and the whole-vocabulary baseline's noun
embeddings in the benchmark's). `recorded_devices` collects them for some
runs; `main` checks that all ran on the expected device (CUDA where torch sees a GPU) and exits
non-zero, naming the outputs, where one did not.

    python -m novic.smoke --runs RUN [RUN ...] --benchmarks NAME [...] [--expect auto|cuda|cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from novic.io import read_metadata
from novic.mix import read_mix


def recorded_devices(
    runs: Sequence[str], benchmarks: Sequence[str], results: str | Path = "results"
) -> dict[str, str]:
    """Output path -> the device its job recorded ("" where it recorded none), for the
    embedding shards, training chunks and evaluations of `runs`."""
    results = Path(results)
    found: dict[str, str] = {}
    for run in runs:
        model = results / "models" / run
        mix = read_mix(model / "mix.json", check=False)
        for source in mix.sources:
            for shard in source.shards:
                found[str(shard.path)] = read_metadata(shard.path).get("novic.device", "")
        metrics = (model / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        for line in metrics:
            record = json.loads(line)
            found[f"{model / 'metrics.jsonl'} chunk {record['chunk']}"] = record.get("device", "")
        for name in [*benchmarks, "text"]:
            path = results / "eval" / run / f"{name}.json"
            metrics = json.loads(path.read_text(encoding="utf-8"))
            found[str(path)] = metrics.get("device", "")
            if "whole_vocab" in metrics:  # the noun embeddings of the whole-vocabulary baseline
                timings = metrics["whole_vocab"].get("timings", {})
                found[f"{path} whole-vocabulary noun embeddings"] = timings.get(
                    "embed_nouns_device", ""
                )
    return found


def wrong_devices(found: dict[str, str], expect: str) -> dict[str, str]:
    """The outputs whose device is not of type `expect` ("cuda" or "cpu")."""
    return {path: dev for path, dev in found.items() if dev.split(":")[0].split(" ")[0] != expect}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m novic.smoke", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", nargs="+", required=True)
    parser.add_argument("--benchmarks", nargs="*", default=[])
    parser.add_argument("--results", default="results")
    parser.add_argument(
        "--expect",
        choices=["auto", "cuda", "cpu"],
        default="auto",
        help="the device every GPU job must have used (auto: cuda where torch sees a GPU)",
    )
    args = parser.parse_args(argv)
    expect = args.expect
    if expect == "auto":
        import torch

        expect = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        found = recorded_devices(args.runs, args.benchmarks, args.results)
    except (OSError, ValueError, KeyError) as e:
        print(f"gpu smoke: cannot read the run's outputs: {e}", file=sys.stderr)
        return 2
    counts = Counter(device or "(not recorded)" for device in found.values())
    for device, count in sorted(counts.items()):
        print(f"{count:6d} outputs on {device}")
    wrong = wrong_devices(found, expect)
    for path, device in sorted(wrong.items()):
        print(f"gpu smoke: {path} ran on {device or 'an unrecorded device'}, not {expect}",
              file=sys.stderr)  # fmt: skip
    if not wrong:
        print(f"gpu smoke: all {len(found)} outputs of the GPU jobs ran on {expect}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
