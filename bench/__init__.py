"""Benchmarks: `python -m bench [NAME ...]` (or `make bench`).

Each module bench/NAME.py defines `run() -> dict[str, object]`: flat, JSON-able results of one
measurement on this machine. Speeds are reported next to the raw operation they are compared to
(measured in the same run), so the figures mean something on any machine. The harness prints
one table per module and writes results/bench/NAME.json. Benchmarks are never run by pytest.
"""
