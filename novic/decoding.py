"""Decoding noun tokens from embeddings (reference section 7): greedy, beam and exhaustive.

A generation config is named like the reference's, `{method}_k{K}_v{prior}_g{guide}_t{T}_a{A}`:

    method  greedy (K = 1), beam (width K, K results) or all (score every guide target by
            teacher forcing; must be guided)
    v       none, or tgt<s> / tok<s>: subtract s x log(prior probability of the next token given
            the vocabulary prefix), once per target when it ends (tgt) or at every token (tok);
            the prior of a token is the share of the model's target nouns below it in their
            prefix tree (tokens off that tree get no adjustment)
    g       n = unguided; p = guided "plain" (tokens the guide list does not allow get -inf
            after the log-softmax, so log-probabilities stay the model's); r = "renormalised"
            (the mask goes before the log-softmax)
    t       temperature: the logits are divided by it
    a       length normalisation: candidates are ranked by score x length^-a, length counting
            the end token

The default `beam_k10_vnone_gp_t1_a0` is beam search of width 10, guided (plain) by the model's
own target nouns. Guide lists are prefix trees of compact token sequences (PrefixTree), so a
guided beam can only ever end on a guide target. Beam search starts from one empty candidate,
forbids the end token first, lets finished beams emit only the end token at log-probability 0,
and takes the top K of K x V candidates per step; it stops when every beam has ended or after
Cmax steps. Everything runs batched over images on the model's device.

`logprob` is the summed log-softmax of the chosen tokens (not renormalised over the guide) and
`score` what candidates are ranked by (logprob, prior adjustment, length normalisation).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from novic.settings import DEFAULT_GENCFG, GenConfig

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 30.0


# --- prefix tree ------------------------------------------------------------------------------


class PrefixTree:
    """The prefix tree of token sequences (compact ids, end token 0, then padding 0).

    Node 0 is the root; every edge carries one token; the end-token edge leads to a leaf that
    names the sequence it completes (`leaf_target`, an index into the sequences; the first of
    duplicates). Edges are stored sorted by (node, token), so a node's children are one
    contiguous slice and a child is found by binary search. `count` is the number of sequences
    below a node, which gives the prior P(token | prefix) = count[child] / count[node].
    """

    def __init__(self, sequences: np.ndarray, vocab_size: int) -> None:
        seqs = np.asarray(sequences, dtype=np.int64)
        if seqs.ndim != 2 or seqs.shape[0] < 1:
            raise ValueError("need a [G, C] array of at least one token sequence")
        if seqs.size and (seqs.min() < 0 or seqs.max() >= vocab_size):
            raise ValueError(f"token ids must be in [0, {vocab_size})")
        children: dict[tuple[int, int], int] = {}
        count = [0]
        leaf = [-1]
        for g, row in enumerate(seqs.tolist()):
            if not row or row[0] == 0:
                raise ValueError(f"sequence {g} is empty (starts with the end token)")
            node = 0
            count[0] += 1
            ended = False
            for token in row:
                key = (node, token)
                if key not in children:
                    children[key] = len(count)
                    count.append(0)
                    leaf.append(-1)
                node = children[key]
                count[node] += 1
                if token == 0:
                    ended = True
                    if leaf[node] < 0:
                        leaf[node] = g
                    break
            if not ended:
                raise ValueError(f"sequence {g} has no end token (0) within {seqs.shape[1]}")
        keys = sorted(children)
        self.vocab_size = vocab_size
        self.num_sequences = seqs.shape[0]
        self.max_length = seqs.shape[1]
        self.num_nodes = len(count)
        parent = np.array([n for n, _ in keys], dtype=np.int64)
        self.edge_token = torch.tensor([t for _, t in keys], dtype=torch.long)
        self.edge_child = torch.tensor([children[k] for k in keys], dtype=torch.long)
        self.edge_key = torch.from_numpy(parent) * vocab_size + self.edge_token
        starts = np.searchsorted(parent, np.arange(self.num_nodes + 1))
        self.node_start = torch.from_numpy(starts.astype(np.int64))
        self.count = torch.tensor(count, dtype=torch.float64)
        self.leaf_target = torch.tensor(leaf, dtype=torch.long)
        counts = self.count[self.edge_child] / self.count[torch.from_numpy(parent)]
        self.edge_logprior = torch.log(counts).float()
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> PrefixTree:
        """Move the tree's tensors to `device` (in place); returns self."""
        device = torch.device(device)
        for name in (
            "edge_token",
            "edge_child",
            "edge_key",
            "node_start",
            "count",
            "leaf_target",
            "edge_logprior",
        ):
            setattr(self, name, getattr(self, name).to(device))
        self.device = device
        return self

    def _edges(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows, edge index) of every child edge of `nodes` [N] (-1 = none), as flat lists."""
        on = nodes >= 0
        safe = nodes.clamp(min=0)
        start = self.node_start[safe]
        degree = torch.where(on, self.node_start[safe + 1] - start, torch.zeros_like(start))
        width = int(degree.max()) if degree.numel() else 0
        offsets = torch.arange(width, device=nodes.device)
        valid = offsets[None, :] < degree[:, None]
        rows = torch.arange(nodes.shape[0], device=nodes.device)[:, None].expand(-1, width)
        return rows[valid], (start[:, None] + offsets[None, :])[valid], degree

    def allowed(self, nodes: torch.Tensor) -> torch.Tensor:
        """Bool [N, V]: the tokens that continue a sequence from each node (-1: nothing)."""
        mask = torch.zeros(nodes.shape[0], self.vocab_size, dtype=torch.bool, device=nodes.device)
        rows, edges, _ = self._edges(nodes)
        mask[rows, self.edge_token[edges]] = True
        return mask

    def log_prior(self, nodes: torch.Tensor) -> torch.Tensor:
        """Float [N, V]: log P(token | node) on the tree's edges, 0 elsewhere and off the tree."""
        out = torch.zeros(nodes.shape[0], self.vocab_size, device=nodes.device)
        rows, edges, _ = self._edges(nodes)
        out[rows, self.edge_token[edges]] = self.edge_logprior[edges]
        return out

    def child(self, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The child of each node along each token; -1 where there is none (or node is -1)."""
        if self.edge_key.numel() == 0:
            return torch.full_like(nodes, -1)
        key = nodes.clamp(min=0) * self.vocab_size + tokens
        pos = torch.searchsorted(self.edge_key, key).clamp(max=self.edge_key.numel() - 1)
        hit = (self.edge_key[pos] == key) & (nodes >= 0)
        return torch.where(hit, self.edge_child[pos], torch.full_like(nodes, -1))

    def edge_prior(self, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """log P(token | node) along each (node, token); 0 where the edge does not exist."""
        if self.edge_key.numel() == 0:
            return torch.zeros(nodes.shape, device=nodes.device)
        key = nodes.clamp(min=0) * self.vocab_size + tokens
        pos = torch.searchsorted(self.edge_key, key).clamp(max=self.edge_key.numel() - 1)
        hit = (self.edge_key[pos] == key) & (nodes >= 0)
        return torch.where(hit, self.edge_logprior[pos], torch.zeros_like(self.edge_logprior[pos]))


# --- results ----------------------------------------------------------------------------------


@dataclass
class Decoded:
    """Batched decoding results; candidates are sorted by score, best first.

    tokens [B, K, C] (compact, 0 after the end), logprob / score [B, K], valid [B, K] (False
    where fewer than K candidates exist), target [B, K]: index of the target noun in the
    model's target list (TargetTokens.nouns; 0 = not a target noun, e.g. unguided novel words).
    """

    tokens: torch.Tensor
    logprob: torch.Tensor
    score: torch.Tensor
    valid: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class Prediction:
    """One predicted noun. `kind`: guide (in the guide list), vocab (a target noun of the
    model outside the guide list) or novel (a token sequence that is no target noun)."""

    noun: str
    logprob: float
    score: float
    kind: str

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)


# --- the decoders -----------------------------------------------------------------------------


def _log_probs(logits: torch.Tensor, cfg: GenConfig, allowed: torch.Tensor | None) -> torch.Tensor:
    """Log-probabilities [N, V] with temperature and the guide mask (plain or renormalised)."""
    logits = logits.float() / cfg.temperature
    if allowed is None:
        return torch.log_softmax(logits, dim=-1)
    if cfg.guide == "r":  # rows with nothing allowed (ended or dead beams) give -inf, not nan
        logp = torch.log_softmax(logits.masked_fill(~allowed, -math.inf), dim=-1)
        return logp.nan_to_num(nan=-math.inf)
    return torch.log_softmax(logits, dim=-1).masked_fill(~allowed, -math.inf)


def _guide_tree(
    cfg: GenConfig, guide: PrefixTree | None, vocab: PrefixTree
) -> tuple[PrefixTree | None, int]:
    """The tree that masks each step (None when unguided) and the most steps a search takes."""
    if cfg.guided and guide is None:
        raise ValueError(f"{cfg.name} is guided but no guide list was given")
    cmax = vocab.max_length if guide is None else max(vocab.max_length, guide.max_length)
    return (guide if cfg.guided else None), cmax


def _step_log_probs(
    logits: torch.Tensor,
    cfg: GenConfig,
    tree: PrefixTree | None,
    node: torch.Tensor,
    step: int,
    cmax: int,
) -> torch.Tensor:
    """Log-probabilities of the next token at `step`: the guide tree's mask when guided, else
    no empty noun at the first step and only the end token at the last."""
    if tree is not None:
        return _log_probs(logits, cfg, tree.allowed(node))
    logp = _log_probs(logits, cfg, None)
    if step == 0:
        logp[:, 0] = -math.inf
    if step == cmax - 1:
        logp[:, 1:] = -math.inf
    return logp


def _length_norm(score: torch.Tensor, length: torch.Tensor, alpha: float) -> torch.Tensor:
    return score if alpha == 0 else score / length.clamp(min=1).float() ** alpha


@torch.no_grad()
def beam_search(
    model: torch.nn.Module,
    embedding: torch.Tensor,
    cfg: GenConfig,
    guide: PrefixTree | None,
    vocab: PrefixTree,
) -> Decoded:
    """Beam search of width cfg.k for embeddings [B, F] (see the module docstring).

    `guide` is the guide list's tree (required when cfg.guided). `vocab` is the tree of all
    the model's target nouns (sequence i = target noun i + 1): it gives the prior and names
    the results.
    """
    device = embedding.device
    b, k, v = embedding.shape[0], cfg.k, vocab.vocab_size
    tree, cmax = _guide_tree(cfg, guide, vocab)
    tokens = torch.zeros(b * k, 0, dtype=torch.long, device=device)
    logprob = torch.zeros(b, k, device=device)
    logprob[:, 1:] = -math.inf  # one empty candidate to start from
    prior = torch.zeros(b, k, device=device)  # sum of log priors along the path
    length = torch.zeros(b, k, dtype=torch.long, device=device)
    done = torch.zeros(b, k, dtype=torch.bool, device=device)
    gnode = torch.zeros(b * k, dtype=torch.long, device=device)
    vnode = torch.zeros(b * k, dtype=torch.long, device=device)
    scale = cfg.prior_scale if cfg.prior != "none" else 0.0
    rep = embedding.repeat_interleave(k, dim=0)
    for step in range(cmax):
        if step == 0:  # every beam is the same empty candidate: run it once per image
            logits = model(embedding, tokens[::k])[:, -1].repeat_interleave(k, dim=0)
        else:
            logits = model(rep, tokens)[:, -1]
        logp = _step_log_probs(logits, cfg, tree, gnode, step, cmax)
        step_prior = vocab.log_prior(vnode) if scale else torch.zeros_like(logp)
        flat_done = done.view(-1)
        logp[flat_done] = -math.inf
        logp[flat_done, 0] = 0.0
        step_prior[flat_done] = 0.0
        cand_logprob = logprob.view(-1, 1) + logp  # [B*K, V]
        cand_prior = prior.view(-1, 1) + step_prior
        cand_len = torch.where(flat_done, length.view(-1), length.view(-1) + 1)
        ends = torch.zeros(1, v, dtype=torch.bool, device=device)
        ends[0, 0] = True
        if cfg.prior == "tok":
            adjusted = cand_logprob - scale * cand_prior
        elif cfg.prior == "tgt":  # the whole target's prior, once it has ended
            adjusted = cand_logprob - scale * cand_prior * (ends | flat_done[:, None])
        else:
            adjusted = cand_logprob
        rank = _length_norm(adjusted, cand_len[:, None].expand(-1, v), cfg.alpha)
        rank = rank.masked_fill(torch.isinf(cand_logprob), -math.inf)
        best, index = rank.view(b, k * v).topk(k, dim=1)
        src = index // v  # beam each candidate continues
        tok = index % v
        flat_src = (src + torch.arange(b, device=device)[:, None] * k).view(-1)
        flat_tok = tok.view(-1)
        logprob = cand_logprob.view(b, k * v).gather(1, index)
        prior = cand_prior.view(b, k * v).gather(1, index)
        length = cand_len.view(b, k).gather(1, src)
        was_done = done.gather(1, src)
        done = was_done | (tok == 0)
        tokens = torch.cat([tokens[flat_src], flat_tok[:, None]], dim=1)
        if tree is not None:
            gnode = tree.child(gnode[flat_src], flat_tok)
            gnode = torch.where(was_done.view(-1), gnode.new_full(gnode.shape, -1), gnode)
        vnode = vocab.child(vnode[flat_src], flat_tok)
        logprob = logprob.masked_fill(torch.isinf(best), -math.inf)
        if bool(done.all()) or step == cmax - 1:
            break
    adjusted = logprob - scale * prior
    score = _length_norm(adjusted, length, cfg.alpha)
    valid = done & ~torch.isinf(logprob)
    order = score.masked_fill(~valid, -math.inf).argsort(dim=1, descending=True, stable=True)
    tokens = tokens.view(b, k, -1).gather(1, order[:, :, None].expand(-1, -1, tokens.shape[1]))
    return _finish(
        tokens,
        logprob.gather(1, order),
        score.gather(1, order),
        valid.gather(1, order),
        vocab,
        cmax,
    )


@torch.no_grad()
def greedy(
    model: torch.nn.Module,
    embedding: torch.Tensor,
    cfg: GenConfig,
    guide: PrefixTree | None,
    vocab: PrefixTree,
) -> Decoded:
    """Greedy decoding: the most probable allowed token at each step (K = 1)."""
    device = embedding.device
    b = embedding.shape[0]
    tree, cmax = _guide_tree(cfg, guide, vocab)
    tokens = torch.zeros(b, 0, dtype=torch.long, device=device)
    logprob = torch.zeros(b, device=device)
    prior = torch.zeros(b, device=device)
    length = torch.zeros(b, dtype=torch.long, device=device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    gnode = torch.zeros(b, dtype=torch.long, device=device)
    vnode = torch.zeros(b, dtype=torch.long, device=device)
    scale = cfg.prior_scale if cfg.prior != "none" else 0.0
    for step in range(cmax):
        logits = model(embedding, tokens)[:, -1]
        logp = _step_log_probs(logits, cfg, tree, gnode, step, cmax)
        step_prior = vocab.log_prior(vnode) if scale else torch.zeros_like(logp)
        rank = logp.clone()
        if cfg.prior == "tok":
            rank = rank - scale * step_prior
        elif cfg.prior == "tgt":  # the target's whole prior counts when it ends
            rank[:, 0] -= scale * (prior + step_prior[:, 0])
        tok = rank.argmax(dim=1)
        tok = torch.where(done, torch.zeros_like(tok), tok)
        chosen = logp.gather(1, tok[:, None])[:, 0]
        logprob = logprob + torch.where(done, torch.zeros_like(chosen), chosen)
        prior = prior + torch.where(done, 0.0, step_prior.gather(1, tok[:, None])[:, 0])
        length = length + (~done).long()
        done = done | (tok == 0)
        tokens = torch.cat([tokens, tok[:, None]], dim=1)
        if tree is not None:
            gnode = tree.child(gnode, tok)
        vnode = vocab.child(vnode, tok)
        if bool(done.all()):
            break
    adjusted = logprob - scale * prior if cfg.prior != "none" else logprob
    score = _length_norm(adjusted, length, cfg.alpha)
    valid = done & ~torch.isinf(logprob)
    return _finish(tokens[:, None], logprob[:, None], score[:, None], valid[:, None], vocab, cmax)


@torch.no_grad()
def score_all(
    model: torch.nn.Module,
    embedding: torch.Tensor,
    cfg: GenConfig,
    guide: PrefixTree,
    guide_tokens: torch.Tensor,
    guide_targets: torch.Tensor,
    vocab: PrefixTree,
    max_rows: int = 8192,
) -> Decoded:
    """Score every guide target by teacher forcing and return the best cfg.k.

    The log-probabilities are those of beam search with the same config (guide mask plain or
    renormalised, temperature, prior, length normalisation), so beam search with K >= the guide
    size returns exactly this ranking.
    """
    device = embedding.device
    b = embedding.shape[0]
    g, c = guide_tokens.shape
    inputs = guide_tokens[:, :-1]
    is_token = torch.zeros_like(guide_tokens, dtype=torch.bool)
    is_token[:, 0] = True
    is_token[:, 1:] = guide_tokens[:, :-1] != 0  # up to and including the end token
    length = is_token.sum(1)
    # the tree nodes along each target (for the renormalised mask and the prior)
    gpath = torch.zeros(g, c, dtype=torch.long, device=device)
    vpath = torch.zeros(g, c, dtype=torch.long, device=device)
    for t in range(1, c):
        gpath[:, t] = guide.child(gpath[:, t - 1], guide_tokens[:, t - 1])
        vpath[:, t] = vocab.child(vpath[:, t - 1], guide_tokens[:, t - 1])
    prior = vocab.edge_prior(vpath.view(-1), guide_tokens.reshape(-1)).view(g, c)
    prior = (prior * is_token).sum(1)
    logprob = torch.empty(b, g, device=device)
    rows = max(1, max_rows // max(c, 1))
    for i in range(b):
        for s in range(0, g, rows):
            sl = slice(s, s + rows)
            n = inputs[sl].shape[0]
            logits = model(embedding[i : i + 1].expand(n, -1), inputs[sl])  # [n, c, V]
            flat = logits.reshape(n * c, -1)
            allowed = guide.allowed(gpath[sl].reshape(-1)) if cfg.guide == "r" else None
            logp = _log_probs(flat, cfg, allowed).view(n, c, -1)
            tok_lp = logp.gather(2, guide_tokens[sl, :, None])[:, :, 0]
            logprob[i, sl] = torch.where(is_token[sl], tok_lp, 0.0).sum(1)
    adjusted = logprob - cfg.prior_scale * prior if cfg.prior != "none" else logprob
    score = _length_norm(adjusted, length[None, :].expand(b, -1), cfg.alpha)
    k = min(cfg.k, g)
    top, index = score.topk(k, dim=1)
    tokens = guide_tokens[index]  # [B, k, C]
    out_logprob = logprob.gather(1, index)
    valid = ~torch.isinf(out_logprob)
    target = guide_targets.to(device)[index]
    if k < cfg.k:  # fewer guide targets than K: pad with invalid rows
        pad = cfg.k - k
        tokens = torch.cat([tokens, tokens.new_zeros(b, pad, c)], 1)
        out_logprob = torch.cat([out_logprob, out_logprob.new_full((b, pad), -math.inf)], 1)
        top = torch.cat([top, top.new_full((b, pad), -math.inf)], 1)
        valid = torch.cat([valid, valid.new_zeros(b, pad)], 1)
        target = torch.cat([target, target.new_zeros(b, pad)], 1)
    return Decoded(tokens, out_logprob, top, valid, target)


def _finish(
    tokens: torch.Tensor,
    logprob: torch.Tensor,
    score: torch.Tensor,
    valid: torch.Tensor,
    vocab: PrefixTree,
    cmax: int,
) -> Decoded:
    """Pad tokens to Cmax and name each candidate's target noun through the vocabulary tree."""
    b, k, c = tokens.shape
    if c < cmax:
        tokens = torch.cat([tokens, tokens.new_zeros(b, k, cmax - c)], dim=2)
    flat = tokens.view(b * k, -1)
    node = torch.zeros(b * k, dtype=torch.long, device=tokens.device)
    ended = torch.zeros(b * k, dtype=torch.bool, device=tokens.device)
    for t in range(flat.shape[1]):  # walk to the leaf after the end token
        node = torch.where(ended, node, vocab.child(node, flat[:, t]))
        ended = ended | (flat[:, t] == 0)
    leaf = vocab.leaf_target[node.clamp(min=0)]
    leaf = torch.where((node >= 0) & ended, leaf, torch.full_like(leaf, -1))
    target = (leaf + 1).clamp(min=0).view(b, k)  # target-noun index (0 = none)
    return Decoded(tokens, logprob, score, valid, target.masked_fill(~valid, 0))


# --- the user-facing decoder ------------------------------------------------------------------


class NounDecoder:
    """A trained decoder plus a generation config and a guide list: embeddings -> nouns.

    `targets` is the model's TargetTokens (from the checkpoint). `guide` lists the nouns the
    guided configs may output (target nouns of the model; None = all of them, the reference's
    default). `detokenize(raw ids)` names token sequences that are no target noun (unguided
    decoding); without it they are shown as their compact ids.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        targets: Any,
        gencfg: str | GenConfig = DEFAULT_GENCFG,
        guide: Sequence[str] | None = None,
        detokenize: Callable[[list[int]], str] | None = None,
        batch_size: int = 128,
    ) -> None:
        self.model = model.eval()
        self.cfg = gencfg if isinstance(gencfg, GenConfig) else GenConfig.parse(gencfg)
        self.nouns: list[str] = list(targets.nouns)
        self.raw_ids: list[int] = list(targets.raw_ids)
        self.detokenize = detokenize
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        table = np.asarray(targets.tokens, dtype=np.int64)
        vocab_size = int(targets.vocab_size)
        self.vocab = PrefixTree(table[1:], vocab_size).to(self.device)
        index = {noun: i for i, noun in enumerate(self.nouns) if i}
        if guide is None:
            rows = list(range(1, len(self.nouns)))
        else:
            missing = [noun for noun in guide if noun not in index]
            if missing:
                raise ValueError(
                    f"{len(missing)} guide noun(s) are not target nouns of the model, e.g. "
                    f"{missing[:5]}; map class names to the model's nouns first"
                )
            rows = sorted({index[noun] for noun in guide})
        if not rows:
            raise ValueError("the guide list is empty")
        self.guide_set = {self.nouns[i] for i in rows}
        self.guide_targets = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.guide_tokens = torch.from_numpy(table[rows]).to(self.device)
        self.guide = PrefixTree(table[rows], vocab_size).to(self.device)

    def decode_batch(self, embedding: torch.Tensor) -> Decoded:
        """Decode one batch of embeddings [B, F] (already on the model's device)."""
        cfg = self.cfg
        if cfg.method == "all":
            return score_all(
                self.model,
                embedding,
                cfg,
                self.guide,
                self.guide_tokens,
                self.guide_targets,
                self.vocab,
            )
        if cfg.method == "greedy":
            return greedy(self.model, embedding, cfg, self.guide, self.vocab)
        return beam_search(self.model, embedding, cfg, self.guide, self.vocab)

    def __call__(self, embeddings: torch.Tensor | np.ndarray) -> list[list[Prediction]]:
        """Ranked predictions per embedding (invalid candidates left out)."""
        emb = torch.as_tensor(embeddings, dtype=torch.float32)
        n = emb.shape[0]
        out: list[list[Prediction]] = []
        begin = last = time.perf_counter()
        for start in range(0, n, self.batch_size):
            part = emb[start : start + self.batch_size].to(self.device)
            out.extend(self.predictions(self.decode_batch(part)))
            now = time.perf_counter()
            if now - last >= PROGRESS_SECONDS and len(out) < n:
                last = now
                rate = len(out) / (now - begin)
                log.info(
                    "decoded %d/%d (%s), %.1f/s, ETA %.0f s",
                    len(out),
                    n,
                    self.cfg.name,
                    rate,
                    (n - len(out)) / rate,
                )
        return out

    def predictions(self, decoded: Decoded) -> list[list[Prediction]]:
        """Decoded tensors -> per-image lists of Prediction."""
        tokens = decoded.tokens.cpu().tolist()
        logprob = decoded.logprob.cpu().tolist()
        score = decoded.score.cpu().tolist()
        valid = decoded.valid.cpu().tolist()
        target = decoded.target.cpu().tolist()
        out = []
        for i in range(len(tokens)):
            preds = []
            for j in range(len(tokens[i])):
                if not valid[i][j]:
                    continue
                if target[i][j]:
                    noun = self.nouns[target[i][j]]
                    kind = "guide" if noun in self.guide_set else "vocab"
                else:
                    noun, kind = self.name_tokens(tokens[i][j]), "novel"
                preds.append(Prediction(noun, logprob[i][j], score[i][j], kind))
            out.append(preds)
        return out

    def name_tokens(self, compact: Sequence[int]) -> str:
        """The text of a compact token sequence that is not a target noun."""
        ids = []
        for t in compact:
            if t == 0:
                break
            ids.append(self.raw_ids[t])
        if self.detokenize is not None:
            return self.detokenize(ids).strip()
        return "<" + " ".join(map(str, compact[: len(ids)])) + ">"
