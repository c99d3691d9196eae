"""Snakemake adapter: the dictionary -> vocabulary FT{T} (nouns with multiplicity above T)."""

import logging

from novic.classlists import read_class_list
from novic.dictionary import META_ARTIFACT, META_CONTENT, META_THRESHOLD, META_WORDNET, read_nouns
from novic.io import read_metadata, sha256_json, write_json, write_parquet
from novic.jobs import start
from novic.nouns import REFERENCE_VOCAB_SIZES, class_coverage, threshold_vocab, vocab_stats

job = start(snakemake)
threshold = int(snakemake.wildcards.threshold)
source = read_metadata(snakemake.input.dictionary)
vocab = threshold_vocab(read_nouns(snakemake.input.dictionary), threshold)
metadata = {
    META_ARTIFACT: "vocab",
    META_THRESHOLD: str(threshold),
    META_CONTENT: sha256_json(vocab.to_pydict()),
    META_WORDNET: source[META_WORDNET],
    "novic.dictionary_sha256": source[META_CONTENT],
}
write_parquet(vocab, snakemake.output.vocab, metadata)
stats = vocab_stats(vocab) | {"threshold": threshold, "wordnet_version": source[META_WORDNET]}
reference = REFERENCE_VOCAB_SIZES.get(threshold)
stats["reference_nouns"] = reference
stats["reference_ratio"] = round(vocab.num_rows / reference, 3) if reference else None
lists = {path: read_class_list(path) for path in snakemake.input.class_lists}
stats["coverage"] = class_coverage(vocab, threshold, lists)
write_json(stats, snakemake.output.stats)
logging.info(
    "FT%d: %d nouns; paper (WordNet 3.1 + Google Web 1T): %s",
    threshold,
    vocab.num_rows,
    f"{reference} (ratio {stats['reference_ratio']:.2f})" if reference else "not reported",
)
