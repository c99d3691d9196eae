"""Snakemake adapter of rule prepare_embedder: download (if needed), load once, write identity."""

from novic.jobs import start

job = start(snakemake)

import logging  # noqa: E402

from novic.embedders import load_embedder  # noqa: E402
from novic.io import write_json  # noqa: E402

key = job.params["embedder"]
embedder = load_embedder(job.params["spec"], "cpu", cache_dir=job.runtime["cache_dir"], key=key)
info = {"key": key, **embedder.info()}
logging.info("%s: %s, dim %d", key, info["description"], info["dim"])
write_json(info, snakemake.output[0])
