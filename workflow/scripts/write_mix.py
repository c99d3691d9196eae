"""Snakemake adapter of rule write_mix: a run's weighted sources over embedding shards."""

import json

from novic.jobs import start

job = start(snakemake)

import logging  # noqa: E402

from novic.mix import build_mix, write_mix  # noqa: E402

cfg = job.params
with open(snakemake.input.embedder, encoding="utf-8") as f:
    info = json.load(f)
mix = build_mix(
    run=cfg["run"],
    embedder_key=cfg["embedder"],
    embedder_info=info,
    vocab=snakemake.input.vocab,
    threshold=cfg["threshold"],
    sources={name: (cfg["mix"][name], paths) for name, paths in cfg["sources"].items()},
    heldout=cfg["heldout"],
)
write_mix(mix, snakemake.output[0])
logging.info(
    "run %s: %s rows per epoch (%s)",
    cfg["run"],
    f"{mix.epoch_rows:,.0f}",
    ", ".join(f"{s.name} {s.rows:,} x{s.weight:g}" for s in mix.sources),
)
