"""Snakemake adapter of rule train_image_tower: the offline CLIP's image tower (novic.towers)."""

from novic.jobs import start

job = start(snakemake)

from novic.towers import train_and_save  # noqa: E402

train_and_save(job.params, snakemake.output[0])
