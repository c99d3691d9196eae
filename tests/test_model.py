"""The object decoder: shape, masking, balanced initialisation and parameter counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from novic.model import GELU_GAIN, ObjectDecoder, init_stds, parameter_count
from novic.settings import DecoderSettings

TINY = {"prefix_tokens": 3, "layers": 2, "hidden": 32, "heads": 4, "feedforward_scale": 0.5}

# SigLIP B/16 (F = 768) at the paper's decoder size; the paper reports 11.4M parameters at FT2
# and 12.2M at FT0, Cmax is not recorded (a handful of SentencePiece tokens; 16 assumed here).
SIGLIP_F, SIGLIP_CMAX = 768, 16


def unit(n: int, f: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, f, generator=g), dim=-1)


def test_paper_decoder_shape() -> None:
    cfg = DecoderSettings(embed_dim=SIGLIP_F, vocab_size=100, max_tokens=SIGLIP_CMAX)
    assert (cfg.prefix_tokens, cfg.layers, cfg.hidden, cfg.heads) == (4, 6, 512, 8)
    assert cfg.ff_dim == 128 and (cfg.dropout, cfg.input_dropout) == (0.1, 0.1)
    model = ObjectDecoder(cfg)
    assert model.project.weight.shape == (4 * 512, 768)
    assert model.position.shape == (4 + SIGLIP_CMAX - 1, 512)
    assert len(model.blocks) == 6
    block = model.blocks[0]
    assert block.qkv.weight.shape == (3 * 512, 512) and block.ff1.weight.shape == (128, 512)
    # no biases anywhere, LayerNorms included
    assert not [n for n, _ in model.named_parameters() if "bias" in n]
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.LayerNorm))
    assert sum(p.numel() for p in model.parameters()) == parameter_count(cfg)


def test_paper_parameter_count_implies_the_compact_vocabulary() -> None:
    """Without the vocabulary the paper-size decoder has ~8.67M parameters; each compact token
    adds H = 512. The paper's 11.4M (FT2) and 12.2M (FT0) then mean V of about 5.3k and 6.9k."""
    base = parameter_count(DecoderSettings(SIGLIP_F, vocab_size=1, max_tokens=SIGLIP_CMAX)) - 512
    assert base == pytest.approx(8.67e6, rel=2e-3)

    def implied_v(millions: float) -> tuple[int, int]:
        # the V range whose count rounds to `millions` (one decimal)
        lo, hi = (millions - 0.05) * 1e6, (millions + 0.05) * 1e6
        return math.ceil((lo - base) / 512), math.floor((hi - base) / 512)

    ft2, ft0 = implied_v(11.4), implied_v(12.2)
    assert ft2[0] <= 5_300 <= ft2[1] and ft0[0] <= 6_900 <= ft0[1]
    for v in (5_300, 6_900):
        cfg = DecoderSettings(SIGLIP_F, vocab_size=v, max_tokens=SIGLIP_CMAX)
        assert sum(p.numel() for p in ObjectDecoder(cfg).parameters()) == parameter_count(cfg)
    assert round(parameter_count(DecoderSettings(SIGLIP_F, 5_300, SIGLIP_CMAX)) / 1e5) == 114
    assert round(parameter_count(DecoderSettings(SIGLIP_F, 6_900, SIGLIP_CMAX)) / 1e5) == 122


def test_gelu_gain_is_the_rms_of_gelu_under_a_unit_normal() -> None:
    x = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    density = torch.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    second_moment = torch.trapezoid(F.gelu(x) ** 2 * density, x)
    assert math.sqrt(second_moment) == pytest.approx(GELU_GAIN, abs=1e-4)


def test_balanced_initialisation_stds() -> None:
    cfg = DecoderSettings(embed_dim=768, vocab_size=4000, max_tokens=16)
    torch.manual_seed(0)
    model = ObjectDecoder(cfg)
    std = init_stds(cfg)
    # the reference's numbers: attention variance factor S = 7/16 at P = 4, depth 1/sqrt(12)
    assert std["proj"] == pytest.approx(1 / math.sqrt(512) / math.sqrt(7 / 16) / math.sqrt(12))
    assert std["ff2"] == pytest.approx(1 / (math.sqrt(128) * 0.6521) / math.sqrt(12))
    assert std["token"] == std["position"] == std["project"] == pytest.approx(math.sqrt(0.5))
    measured = {
        "project": model.project.weight,
        "token": model.token.weight,
        "position": model.position,
        "qkv": torch.cat([b.qkv.weight for b in model.blocks]),
        "proj": torch.cat([b.proj.weight for b in model.blocks]),
        "ff1": torch.cat([b.ff1.weight for b in model.blocks]),
        "ff2": torch.cat([b.ff2.weight for b in model.blocks]),
    }
    for name, weight in measured.items():
        assert weight.std().item() == pytest.approx(std[name], rel=0.05), name
    assert torch.all(model.blocks[0].ln1.weight == 1)
    assert torch.allclose(model.ln.weight, torch.full((512,), 1 / math.sqrt(512)))


def test_initial_logits_have_the_balanced_scale() -> None:
    cfg = DecoderSettings(embed_dim=768, vocab_size=3000, max_tokens=12)
    torch.manual_seed(1)
    model = ObjectDecoder(cfg).eval()
    tokens = torch.randint(1, cfg.vocab_size, (128, cfg.max_tokens - 1))
    with torch.no_grad():
        logits = model(unit(128, 768), tokens)
    assert logits.shape == (128, cfg.max_tokens, cfg.vocab_size)
    assert logits.std().item() == pytest.approx(math.sqrt(0.5), rel=0.1)


def test_mask_is_causal_with_a_fully_visible_prefix() -> None:
    cfg = DecoderSettings(embed_dim=16, vocab_size=20, max_tokens=6, **TINY)
    mask = ObjectDecoder(cfg).mask
    p = cfg.prefix_tokens
    assert mask[:p, :p].all()
    assert not mask[: p - 1, p:].any()
    for i in range(p, cfg.max_seq):
        assert mask[i, : i + 1].all() and not mask[i, i + 1 :].any()


def test_outputs_depend_only_on_earlier_tokens_and_the_whole_embedding() -> None:
    cfg = DecoderSettings(embed_dim=16, vocab_size=20, max_tokens=6, **TINY)
    torch.manual_seed(0)
    model = ObjectDecoder(cfg).eval()
    e = unit(4, 16)
    tokens = torch.randint(1, 20, (4, 5))
    changed = tokens.clone()
    changed[:, 2] = (changed[:, 2] % 19) + 1
    with torch.no_grad():
        a, b = model(e, tokens), model(e, changed)
        # output j predicts token j from tokens 0..j-1: only j >= 3 may change
        assert torch.equal(a[:, :3], b[:, :3]) and not torch.allclose(a[:, 3:], b[:, 3:])
        # the first prediction uses the whole prefix (not a strictly causal prefix)
        assert model(e, tokens[:, :0]).shape == (4, 1, 20)
        assert torch.allclose(model(e, tokens[:, :0])[:, 0], a[:, 0], atol=1e-5)
        # the embedding is re-normalised
        assert torch.allclose(model(3 * e, tokens), a, atol=1e-5)


def test_too_many_tokens_and_bad_settings_are_rejected() -> None:
    cfg = DecoderSettings(embed_dim=16, vocab_size=20, max_tokens=6, **TINY)
    with pytest.raises(ValueError, match="at most 5 input tokens"):
        ObjectDecoder(cfg)(unit(1, 16), torch.ones(1, 6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"model\.heads"):
        DecoderSettings(embed_dim=16, vocab_size=20, max_tokens=6, hidden=30, heads=4)
    with pytest.raises(ValueError, match=r"model\.feedforward_scale"):
        DecoderSettings(
            embed_dim=16, vocab_size=20, max_tokens=6, hidden=30, heads=3, feedforward_scale=0.25
        )
    with pytest.raises(ValueError, match=r"model\.dropout"):
        DecoderSettings(embed_dim=16, vocab_size=20, max_tokens=6, dropout=1.0)
