"""Snakemake adapter: WordNet object nouns (or the reference's dictionary) ->
results/nouns/dictionary.parquet."""

import logging

from novic.dictionary import META_ARTIFACT, META_CONTENT
from novic.io import sha256_file, sha256_json, write_json, write_parquet
from novic.jobs import start
from novic.nouns import comparison_line, extract_dictionary, reference_comparison, vocab_stats

job = start(snakemake)
params = snakemake.params.nouns
table, metadata = extract_dictionary(params)
metadata |= {META_ARTIFACT: "dictionary", META_CONTENT: sha256_json(table.to_pydict())}
if params["source"]["kind"] == "wordnet":
    metadata["novic.rules_sha256"] = sha256_file(params["rules"])
write_parquet(table, snakemake.output.dictionary, metadata)
comparison = reference_comparison(table)
write_json(
    vocab_stats(table) | metadata | {"paper_vocabularies": comparison}, snakemake.output.stats
)
logging.info("%d nouns written to %s", table.num_rows, snakemake.output.dictionary)
logging.info("%s", comparison_line(comparison))
