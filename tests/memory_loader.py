"""An in-memory stand-in for novic.loader.EmbeddingLoader (tests that train a decoder)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class Batch:
    embedding: torch.Tensor
    targets: torch.Tensor
    weights: torch.Tensor


class MemoryLoader:
    """The novic.loader API over tensors: a (seed, epoch) permutation, complete batches."""

    def __init__(
        self,
        embedding: torch.Tensor,
        targets: torch.Tensor,
        weights: torch.Tensor,
        batch_size: int,
        seed: int = 0,
    ) -> None:
        self.embedding, self.targets, self.weights = embedding, targets, weights
        self.batch_size, self.seed = batch_size, seed
        self.rows_per_epoch, self.dim = embedding.shape[0], embedding.shape[1]

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[Batch]:
        g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        order = torch.randperm(self.rows_per_epoch, generator=g)
        for b in range(start_batch, self.rows_per_epoch // self.batch_size):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield Batch(self.embedding[idx], self.targets[idx], self.weights[idx])
