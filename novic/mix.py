"""The training mix manifest (mix.json): a run's weighted sources over embedding shards.

A mix (results/models/{run}/mix.json) is the training set of a run: a manifest of sources (m1,
m2, m3, captions), each a weight (passes per epoch: captions x4 = 4) and its shards with their
row counts, sources (the text shard each holds) and content checksums, plus the embedder and
noun-table identity. Nothing is copied. build_mix() requires every shard to hold the text shard
its path names; read_mix() checks every shard against the manifest (novic.shards.check_shard)
and refuses a cache whose embedder, dim, noun table, row counts, sources or checksums differ,
naming the file and the mismatch. Manifests of version 1 (before sources and checksums) are
still read, with a warning: their shards are checked against their paths only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novic.dictionary import nouns_fingerprint
from novic.io import write_json
from novic.shards import CHECKSUM_KEY, CacheMismatchError, check_shard, shard_metadata

log = logging.getLogger(__name__)

SOURCES = ("m1", "m2", "m3", "captions")
MIX_VERSION = 2


@dataclass
class MixShard:
    """One shard of a mix: its rows, the text shard it holds and its content checksum ("" for a
    shard without one); source and checksum are None where the manifest does not record them."""

    path: Path
    rows: int
    source: str | None = None
    checksum: str | None = None


@dataclass
class MixSource:
    """One data source of a mix: `weight` passes over its shards per epoch."""

    name: str
    weight: float
    shards: list[MixShard]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)


@dataclass
class Mix:
    """A run's training data: weighted sources over embedding shards (see the module doc)."""

    run: str
    embedder: str
    embedder_spec: dict[str, Any]
    embedder_sha256: str
    dim: int
    dtype: str
    max_targets: int
    vocab_sha256: str
    threshold: int
    sources: list[MixSource]
    heldout: dict[str, MixShard] = field(default_factory=dict)
    path: Path | None = None

    @property
    def epoch_rows(self) -> float:
        """Expected rows per epoch: sum of weight x rows over the sources."""
        return sum(s.weight * s.rows for s in self.sources)

    def expect(self) -> dict[str, str]:
        return {
            "novic.embedder_sha256": self.embedder_sha256,
            "novic.embedder": self.embedder,
            "novic.dim": str(self.dim),
            "novic.dtype": self.dtype,
            "novic.vocab_sha256": self.vocab_sha256,
        }

    def shards(self) -> Iterator[tuple[MixSource | None, MixShard]]:
        for source in self.sources:
            for shard in source.shards:
                yield source, shard
        for shard in self.heldout.values():
            yield None, shard


def build_mix(
    run: str,
    embedder_key: str,
    embedder_info: Mapping[str, Any],
    vocab: str | Path,
    threshold: int,
    sources: Mapping[str, tuple[float, Sequence[str | Path]]],
    heldout: Mapping[str, str | Path] | None = None,
) -> Mix:
    """Build and check the mix of a run: `sources` maps name -> (weight, shard paths)."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"runs.{run}.mix: unknown sources {unknown} (known: {list(SOURCES)})")
    first = next((Path(p) for _, paths in sources.values() for p in paths), None)
    if first is None:
        raise ValueError(f"runs.{run}.mix: no source with a positive weight")
    meta = shard_metadata(first)[0]
    mix = Mix(
        run=run,
        embedder=embedder_key,
        embedder_spec=dict(embedder_info["spec"]),
        embedder_sha256=embedder_info["sha256"],
        dim=int(embedder_info["dim"]),
        dtype=meta.get("novic.dtype", ""),
        max_targets=0,
        vocab_sha256=nouns_fingerprint(vocab),
        threshold=threshold,
        sources=[],
    )
    expect = mix.expect()

    def shard(path: str | Path) -> MixShard:
        rows = check_shard(path, expect)  # its source is the one its path names
        meta = shard_metadata(path)[0]
        mix.max_targets = max(mix.max_targets, int(meta["novic.max_targets"]))
        return MixShard(Path(path), rows, meta["novic.source"], meta.get(CHECKSUM_KEY, ""))

    for name, (weight, paths) in sources.items():
        mix.sources.append(MixSource(name, float(weight), [shard(p) for p in paths]))
    for name, p in (heldout or {}).items():
        mix.heldout[name] = shard(p)
    return mix


def write_mix(mix: Mix, path: str | Path) -> None:
    """Write the manifest as JSON; shard paths are stored relative to its folder."""
    path = Path(path)
    base = path.parent.resolve()

    def shard(s: MixShard) -> dict[str, Any]:
        path = os.path.relpath(s.path.resolve(), base)
        return {"path": path, "rows": s.rows, "source": s.source, "checksum": s.checksum}

    obj = {
        "version": MIX_VERSION,
        "run": mix.run,
        "embedder": mix.embedder,
        "embedder_spec": mix.embedder_spec,
        "embedder_sha256": mix.embedder_sha256,
        "dim": mix.dim,
        "dtype": mix.dtype,
        "max_targets": mix.max_targets,
        "vocab_sha256": mix.vocab_sha256,
        "threshold": mix.threshold,
        "epoch_rows": mix.epoch_rows,
        "sources": [
            {
                "name": s.name,
                "weight": s.weight,
                "rows": s.rows,
                "shards": [shard(x) for x in s.shards],
            }
            for s in mix.sources
        ],
        "heldout": {name: shard(s) for name, s in mix.heldout.items()},
    }
    write_json(obj, path)


def read_mix(
    path: str | Path,
    vocab: str | Path | None = None,
    embedder_sha256: str | None = None,
    check: bool = True,
) -> Mix:
    """Read a mix manifest; with `check`, verify every shard (and `vocab` / the embedder hash).

    Raises CacheMismatchError naming the file and what differs: the embedder, the embedding
    dim or dtype, the noun table, a row count, the text shard a shard holds or its checksum
    (DamagedShardError for a shard that cannot be read).
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CacheMismatchError(
            f"{path}: unreadable mix manifest ({e}); delete it and rerun the workflow"
        ) from e
    if obj.get("version") not in (1, MIX_VERSION):
        raise CacheMismatchError(
            f"{path}: mix version {obj.get('version')}, expected {MIX_VERSION}"
        )
    if obj["version"] < MIX_VERSION:
        log.warning(
            "%s: written before mixes recorded shard sources and checksums; its shards are "
            "checked against their paths only (delete it and rerun the workflow to rewrite it)",
            path,
        )
    base = path.parent

    def shard(d: Mapping[str, Any]) -> MixShard:
        return MixShard(base / d["path"], int(d["rows"]), d.get("source"), d.get("checksum"))

    mix = Mix(
        run=obj["run"],
        embedder=obj["embedder"],
        embedder_spec=obj["embedder_spec"],
        embedder_sha256=obj["embedder_sha256"],
        dim=int(obj["dim"]),
        dtype=obj["dtype"],
        max_targets=int(obj["max_targets"]),
        vocab_sha256=obj["vocab_sha256"],
        threshold=int(obj["threshold"]),
        sources=[
            MixSource(s["name"], float(s["weight"]), [shard(x) for x in s["shards"]])
            for s in obj["sources"]
        ],
        heldout={name: shard(s) for name, s in obj.get("heldout", {}).items()},
        path=path,
    )
    if embedder_sha256 is not None and embedder_sha256 != mix.embedder_sha256:
        raise CacheMismatchError(
            f"{path}: embedder mismatch (the mix was built with {mix.embedder} "
            f"{mix.embedder_sha256}, expected {embedder_sha256})"
        )
    if vocab is not None:
        got = nouns_fingerprint(vocab)
        if got != mix.vocab_sha256:
            raise CacheMismatchError(
                f"{path}: noun table mismatch ({vocab} is {got}, the mix has {mix.vocab_sha256})"
            )
    if check:
        expect = mix.expect()
        for _, s in mix.shards():
            check_shard(s.path, expect, s.rows, s.source, s.checksum)
    return mix
