"""Snakemake adapter of rule prepare_embedder: download (if needed), load once, write identity."""

from novic.logs import log_to

log_to(snakemake.log[0])

import logging  # noqa: E402

from novic.embedders import load_embedder  # noqa: E402
from novic.io import write_json  # noqa: E402

cfg = snakemake.params.cfg
embedder = load_embedder(
    cfg["spec"], "cpu", cache_dir=snakemake.config["embeddings"]["cache_dir"], key=cfg["embedder"]
)
info = {"key": cfg["embedder"], **embedder.info()}
logging.info("%s: %s, dim %d", cfg["embedder"], info["description"], info["dim"])
write_json(info, snakemake.output[0])
