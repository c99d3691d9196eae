"""Decoding: generation configs, the prefix tree, and the properties that tie greedy, beam and
exhaustive scoring together, on a small random decoder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from novic.decoding import NounDecoder, PrefixTree
from novic.model import ObjectDecoder
from novic.settings import DEFAULT_GENCFG, DecoderSettings, GenConfig, GenConfigError
from novic.tokens import TargetTokens

VOCAB, CMAX, NOUNS, DIM = 12, 5, 40, 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_targets(nouns: int = NOUNS, seed: int = 0) -> TargetTokens:
    """Distinct random token sequences of 1..CMAX-1 tokens, sharing prefixes (small vocab)."""
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, ...]] = set()
    while len(seen) < nouns:
        n = int(rng.integers(1, CMAX))
        seen.add(tuple(int(t) for t in rng.integers(1, VOCAB, n)))
    tokens = np.zeros((nouns + 1, CMAX), dtype=np.int64)
    for row, seq in enumerate(sorted(seen), 1):
        tokens[row, : len(seq)] = seq
    names = ["", *(f"noun{i}" for i in range(1, nouns + 1))]
    return TargetTokens(names, list(range(nouns + 1)), list(range(100, 100 + VOCAB)), tokens)


@pytest.fixture(scope="module")
def targets() -> TargetTokens:
    return make_targets()


@pytest.fixture(scope="module")
def model() -> ObjectDecoder:
    torch.manual_seed(0)
    cfg = DecoderSettings(
        embed_dim=DIM, vocab_size=VOCAB, max_tokens=CMAX, layers=2, hidden=32, heads=4
    )
    m = ObjectDecoder(cfg).eval()
    # sharpen the random logits so that rankings are far from ties
    with torch.no_grad():
        m.ln.weight.mul_(8)
    return m


@pytest.fixture(scope="module")
def embeddings() -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.nn.functional.normalize(torch.randn(12, DIM, generator=gen), dim=1)


def teacher_forced_logprob(model: ObjectDecoder, emb: torch.Tensor, seq: np.ndarray) -> float:
    """The model's own summed log-softmax of a token sequence (up to and including the end)."""
    toks = torch.as_tensor(seq, dtype=torch.long)[None]
    with torch.no_grad():
        logp = torch.log_softmax(model(emb[None], toks[:, :-1]).float(), -1)[0]
    n = int((toks[0] != 0).sum()) + 1
    return float(sum(logp[t, toks[0, t]] for t in range(n)))


# --- configs ----------------------------------------------------------------------------------


def test_gencfg_parses_the_reference_names() -> None:
    cfg = GenConfig.parse(DEFAULT_GENCFG)
    assert (cfg.method, cfg.k, cfg.prior, cfg.guide, cfg.temperature, cfg.alpha) == (
        "beam", 10, "none", "p", 1.0, 0.0,
    )  # fmt: skip
    other = GenConfig.parse("all_k5_vtok0.5_gr_t0.7_a1.5")
    assert (other.method, other.prior, other.prior_scale, other.guide) == ("all", "tok", 0.5, "r")
    assert (other.temperature, other.alpha) == (0.7, 1.5)
    for name in (DEFAULT_GENCFG, "all_k5_vtok0.5_gr_t0.7_a1.5", "greedy_k1_vtgt2_gn_t1_a0"):
        assert GenConfig.parse(name).name == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("beam_k10", "does not parse"),
        ("greedy_k3_vnone_gp_t1_a0", "k must be 1"),
        ("all_k10_vnone_gn_t1_a0", "needs guide p or r"),
        ("beam_k0_vnone_gp_t1_a0", "k must be >= 1"),
        ("beam_k10_vnone_gp_t0_a0", "temperature"),
        ("beam_k10_vprior1_gp_t1_a0", "does not parse"),
    ],
)
def test_bad_gencfg_names_say_what_is_wrong(name: str, message: str) -> None:
    with pytest.raises(GenConfigError, match=message):
        GenConfig.parse(name)


# --- prefix tree ------------------------------------------------------------------------------


def test_prefix_tree_children_leaves_and_prior() -> None:
    seqs = np.array([[1, 2, 0, 0], [1, 3, 0, 0], [1, 0, 0, 0], [4, 0, 0, 0]])
    tree = PrefixTree(seqs, vocab_size=5)
    root = torch.tensor([0])
    assert tree.allowed(root)[0].nonzero().flatten().tolist() == [1, 4]
    one = tree.child(root, torch.tensor([1]))
    assert tree.allowed(one)[0].nonzero().flatten().tolist() == [0, 2, 3]
    assert int(tree.child(root, torch.tensor([2]))) == -1
    # 3 of the 4 sequences start with token 1; 1 of those 3 ends right after it
    assert float(tree.log_prior(root)[0, 1]) == pytest.approx(math.log(3 / 4))
    assert float(tree.log_prior(one)[0, 0]) == pytest.approx(math.log(1 / 3))
    leaf = tree.child(tree.child(one, torch.tensor([3])), torch.tensor([0]))
    assert int(tree.leaf_target[leaf]) == 1
    assert not tree.allowed(leaf).any()
    assert not tree.allowed(torch.tensor([-1])).any()


def test_prefix_tree_rejects_sequences_without_end_or_empty() -> None:
    with pytest.raises(ValueError, match="no end token"):
        PrefixTree(np.array([[1, 2]]), vocab_size=3)
    with pytest.raises(ValueError, match="empty"):
        PrefixTree(np.array([[0, 0]]), vocab_size=3)


# --- the properties ---------------------------------------------------------------------------


GUIDED = [
    "beam_k{k}_vnone_gp_t1_a0",
    "beam_k{k}_vnone_gr_t1_a0",
    "beam_k{k}_vnone_gp_t0.6_a1",
    "beam_k{k}_vtok0.5_gp_t1_a0",
    "beam_k{k}_vtgt1_gr_t1.5_a0.5",
]


@pytest.mark.parametrize("pattern", GUIDED)
def test_guided_outputs_are_always_in_the_guide_list(
    pattern: str, model: ObjectDecoder, targets: TargetTokens, embeddings: torch.Tensor
) -> None:
    guide = [f"noun{i}" for i in (3, 7, 8, 15, 22, 23, 31)]
    for k in (1, 3):
        decoder = NounDecoder(model, targets, pattern.format(k=k), guide=guide)
        preds = decoder(embeddings)
        assert all(len(p) == k for p in preds)
        assert {q.noun for p in preds for q in p} <= set(guide)
        assert all(q.kind == "guide" for p in preds for q in p)
    greedy = NounDecoder(model, targets, "greedy_k1_vnone_gp_t1_a0", guide=guide)
    assert {p[0].noun for p in greedy(embeddings)} <= set(guide)


@pytest.mark.parametrize("pattern", GUIDED)
def test_beam_with_k_at_least_the_guide_size_ranks_like_exhaustive_scoring(
    pattern: str, model: ObjectDecoder, targets: TargetTokens, embeddings: torch.Tensor
) -> None:
    guide = [f"noun{i}" for i in range(1, 17)]  # 16 nouns with shared prefixes
    k = len(guide) + 2
    beam = NounDecoder(model, targets, pattern.format(k=k), guide=guide)(embeddings)
    exhaustive = NounDecoder(
        model, targets, pattern.format(k=k).replace("beam", "all"), guide=guide
    )(embeddings)
    for b, e in zip(beam, exhaustive, strict=True):
        assert len(b) == len(e) == len(guide)
        assert [p.noun for p in b] == [p.noun for p in e]
        np.testing.assert_allclose([p.score for p in b], [p.score for p in e], atol=1e-4)
        np.testing.assert_allclose([p.logprob for p in b], [p.logprob for p in e], atol=1e-4)


@pytest.mark.parametrize(
    "cfg",
    [
        "vnone_gn_t1_a0",
        "vnone_gp_t1_a0",
        "vnone_gr_t0.5_a0",
        "vtok1_gn_t1_a1",
        "vtgt2_gp_t1_a0",
        "vtgt0.5_gn_t2_a0.5",
    ],
)
def test_greedy_equals_beam_with_k_1(
    cfg: str, model: ObjectDecoder, targets: TargetTokens, embeddings: torch.Tensor
) -> None:
    guide = [f"noun{i}" for i in range(5, 30)]
    greedy = NounDecoder(model, targets, f"greedy_k1_{cfg}", guide=guide)
    beam = NounDecoder(model, targets, f"beam_k1_{cfg}", guide=guide)
    g = greedy.decode_batch(embeddings)
    b = beam.decode_batch(embeddings)
    assert torch.equal(g.tokens, b.tokens)
    torch.testing.assert_close(g.logprob, b.logprob, atol=1e-5, rtol=0)
    torch.testing.assert_close(g.score, b.score, atol=1e-5, rtol=0)


# --- what the numbers mean --------------------------------------------------------------------


def test_plain_guidance_keeps_the_models_log_probabilities(
    model: ObjectDecoder, targets: TargetTokens, embeddings: torch.Tensor
) -> None:
    guide = [f"noun{i}" for i in range(1, 11)]
    plain = NounDecoder(model, targets, "beam_k3_vnone_gp_t1_a0", guide=guide)
    renorm = NounDecoder(model, targets, "beam_k3_vnone_gr_t1_a0", guide=guide)
    index = {n: i for i, n in enumerate(targets.nouns)}
    for emb, p, r in zip(embeddings, plain(embeddings), renorm(embeddings), strict=True):
        for pred in p:
            expected = teacher_forced_logprob(model, emb, targets.tokens[index[pred.noun]])
            assert pred.logprob == pytest.approx(expected, abs=1e-4)
            assert pred.prob == pytest.approx(math.exp(expected), rel=1e-3)
        # renormalising over the guide can only raise a sequence's probability
        by_noun = {pred.noun: pred.logprob for pred in p}
        for pred in r:
            if pred.noun in by_noun:
                assert pred.logprob >= by_noun[pred.noun] - 1e-5
        assert sum(math.exp(q.logprob) for q in r) <= 1 + 1e-4


def test_length_normalisation_divides_by_length_to_the_alpha(
    model: ObjectDecoder, targets: TargetTokens, embeddings: torch.Tensor
) -> None:
    decoder = NounDecoder(model, targets, "all_k40_vnone_gp_t1_a0.7")
    index = {n: i for i, n in enumerate(targets.nouns)}
    for pred in decoder(embeddings[:2])[0]:
        length = int((targets.tokens[index[pred.noun]] != 0).sum()) + 1
        assert pred.score == pytest.approx(pred.logprob / length**0.7, abs=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 3])
def test_temperature_divides_the_logits(
    temperature: float, model: ObjectDecoder, targets: TargetTokens, embeddings: torch.Tensor
) -> None:
    decoder = NounDecoder(model, targets, f"all_k5_vnone_gp_t{temperature:g}_a0")
    index = {n: i for i, n in enumerate(targets.nouns)}
    emb = embeddings[0]
    for pred in decoder(emb[None])[0]:
        toks = torch.as_tensor(targets.tokens[index[pred.noun]])[None]
        with torch.no_grad():
            logits = model(emb[None], toks[:, :-1])[0] / temperature
        logp = torch.log_softmax(logits, -1)
        n = int((toks != 0).sum()) + 1
        assert pred.logprob == pytest.approx(float(logp[range(n), toks[0, :n]].sum()), abs=1e-4)


def test_prior_favours_rare_prefixes(
    model: ObjectDecoder, targets: TargetTokens, embeddings: torch.Tensor
) -> None:
    """score = logprob - s x log P_vocab(target): the adjustment is exactly the target's prior."""
    tree = PrefixTree(targets.tokens[1:], VOCAB)
    index = {n: i for i, n in enumerate(targets.nouns)}
    decoder = NounDecoder(model, targets, "all_k40_vtgt2_gp_t1_a0")
    for pred in decoder(embeddings[:1])[0]:
        seq = torch.as_tensor(targets.tokens[index[pred.noun]])
        node, log_prior = torch.tensor([0]), 0.0
        for t in seq.tolist():
            log_prior += float(tree.edge_prior(node, torch.tensor([t])))
            node = tree.child(node, torch.tensor([t]))
            if t == 0:
                break
        assert pred.score == pytest.approx(pred.logprob - 2 * log_prior, abs=1e-4)


def test_unguided_beam_ends_every_candidate_and_names_novel_sequences(
    model: ObjectDecoder, targets: TargetTokens, embeddings: torch.Tensor
) -> None:
    decoder = NounDecoder(
        model, targets, "beam_k8_vnone_gn_t1_a0", detokenize=lambda ids: "+".join(map(str, ids))
    )
    decoded = decoder.decode_batch(embeddings)
    assert bool(decoded.valid.all())
    assert bool((decoded.tokens[:, :, 0] != 0).all())  # never the empty noun
    assert bool((decoded.tokens == 0).any(dim=2).all())  # every candidate ended
    preds = decoder(embeddings)
    for p in preds:
        scores = [q.score for q in p]
        assert scores == sorted(scores, reverse=True)
        for q in p:
            if q.kind == "novel":
                assert all(part.isdigit() for part in q.noun.split("+"))
            else:
                assert q.noun in targets.nouns


def test_guide_nouns_must_be_target_nouns(model: ObjectDecoder, targets: TargetTokens) -> None:
    with pytest.raises(ValueError, match=r"not target nouns of the model.*'zebra'"):
        NounDecoder(model, targets, guide=["noun1", "zebra"])


def test_small_guide_lists_give_fewer_candidates(
    model: ObjectDecoder, targets: TargetTokens, embeddings: torch.Tensor
) -> None:
    guide = ["noun2", "noun9"]
    for name in ("beam_k5_vnone_gp_t1_a0", "all_k5_vnone_gp_t1_a0"):
        preds = NounDecoder(model, targets, name, guide=guide)(embeddings)
        assert all(sorted(q.noun for q in p) == guide for p in preds)
