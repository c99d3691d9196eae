"""The object decoder: a prefix transformer that turns a unit CLIP embedding into noun tokens.

Shape (reference section 5): the re-normalised embedding e [B, F] goes through one bias-free
linear layer into P prefix vectors of width H; the token embeddings of the teacher-forced
target prefix follow; learned positions are added and dropout applied. L pre-LayerNorm
transformer blocks (multi-head self-attention, GELU feed-forward of width K = H x
feedforward_scale, no biases anywhere) run under a causal mask whose first P x P block (the
prefix) is fully visible. A final LayerNorm and the transposed token embedding (weight tying)
give the logits. The first noun token is predicted at the last prefix position, so there is no
start token; compact token 0 is the end token (and the padding).

Initialisation is the reference's variance-balanced one (`init_weights`): with unit-variance
inputs every residual branch and the logits start with a known scale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from novic.settings import DecoderSettings

# sqrt(E[gelu(x)^2]) for x ~ N(0, 1): the RMS gain of GELU that the balanced init divides by.
GELU_GAIN = 0.6521


def parameter_count(cfg: DecoderSettings) -> int:
    """The decoder's parameter count, computed from its hyperparameters alone.

    Input projection F x P x H, token embedding V x H (tied with the output layer), positions
    (P + Cmax - 1) x H, per block 4 H^2 (attention) + 2 H K (feed-forward) + 2 H (LayerNorm
    weights), and the final LayerNorm H.
    """
    h, k = cfg.hidden, cfg.ff_dim
    block = 4 * h * h + 2 * h * k + 2 * h
    return (
        cfg.embed_dim * cfg.prefix_tokens * h
        + cfg.vocab_size * h
        + cfg.max_seq * h
        + cfg.layers * block
        + h
    )


class Block(nn.Module):
    """Pre-LayerNorm transformer block without biases: x + attn(ln(x)), then x + ff(ln(x))."""

    def __init__(self, cfg: DecoderSettings) -> None:
        super().__init__()
        h = cfg.hidden
        self.heads = cfg.heads
        self.dropout = cfg.dropout
        self.ln1 = nn.LayerNorm(h, bias=False)
        self.qkv = nn.Linear(h, 3 * h, bias=False)
        self.proj = nn.Linear(h, h, bias=False)
        self.ln2 = nn.LayerNorm(h, bias=False)
        self.ff1 = nn.Linear(h, cfg.ff_dim, bias=False)
        self.ff2 = nn.Linear(cfg.ff_dim, h, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, s, 3, self.heads, h // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, s, h)))
        return x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(self.ln2(x))))))


class ObjectDecoder(nn.Module):
    """The prefix decoder; `forward(embedding, tokens)` gives next-token logits."""

    def __init__(self, cfg: DecoderSettings) -> None:
        super().__init__()
        self.cfg = cfg
        p, h = cfg.prefix_tokens, cfg.hidden
        self.project = nn.Linear(cfg.embed_dim, p * h, bias=False)
        self.token = nn.Embedding(cfg.vocab_size, h)
        self.position = nn.Parameter(torch.empty(cfg.max_seq, h))
        self.drop = nn.Dropout(cfg.input_dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(h, bias=False)
        # True = may attend: causal, except that the prefix block sees itself fully.
        i = torch.arange(cfg.max_seq)
        visible = i[None, :] <= torch.clamp(i[:, None], min=p - 1)
        self.register_buffer("mask", visible, persistent=False)
        self.init_weights()

    def init_weights(self) -> None:
        """The reference's variance-balanced initialisation (novic.md section 5).

        Token embedding, positions and input projection N(0, 1/2) (the prefix or token plus
        position then has unit variance); QKV and FF1 std 1/sqrt(H); the attention output std
        1/sqrt(H) / sqrt(S) / sqrt(2L) with S = (2P - 1)/P^2, the variance factor of attention
        over the P always-visible positions; FF2 std 1/(sqrt(K) x GELU gain) / sqrt(2L); block
        LayerNorm weights 1; the final LayerNorm weight 1/sqrt(H), so logits start at std
        sqrt(1/2).
        """
        std = init_stds(self.cfg)
        nn.init.normal_(self.project.weight, std=std["project"])
        nn.init.normal_(self.token.weight, std=std["token"])
        nn.init.normal_(self.position, std=std["position"])
        for block in self.blocks:
            for name in ("qkv", "proj", "ff1", "ff2"):
                nn.init.normal_(getattr(block, name).weight, std=std[name])
            nn.init.constant_(block.ln1.weight, std["ln_block"])
            nn.init.constant_(block.ln2.weight, std["ln_block"])
        nn.init.constant_(self.ln.weight, std["ln_final"])

    def forward(self, embedding: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [R, c + 1, V] predicting token 0..c from `embedding` [R, F] and `tokens` [R, c].

        `tokens` are the compact target tokens fed in (teacher forcing: the target without its
        last position; decoding: what has been generated so far); c may be 0.
        """
        cfg = self.cfg
        r, c = tokens.shape
        if c > cfg.max_tokens - 1:
            raise ValueError(f"at most {cfg.max_tokens - 1} input tokens, got {c}")
        prefix = self.project(F.normalize(embedding, dim=-1)).view(r, cfg.prefix_tokens, -1)
        x = torch.cat([prefix, self.token(tokens)], dim=1) if c else prefix
        s = x.shape[1]
        x = self.drop(x + self.position[:s])
        mask = self.mask[:s, :s]
        for block in self.blocks:
            x = block(x, mask)
        x = self.ln(x[:, cfg.prefix_tokens - 1 :])
        return x @ self.token.weight.t()


def init_stds(cfg: DecoderSettings) -> dict[str, float]:
    """The balanced-init standard deviation of each weight tensor kind (for tests and docs)."""
    h, p, k = cfg.hidden, cfg.prefix_tokens, cfg.ff_dim
    depth = 1 / math.sqrt(2 * cfg.layers)
    attn_scale = math.sqrt((2 * p - 1) / p**2)
    half = 1 / math.sqrt(2)
    return {
        "project": half,
        "token": half,
        "position": half,
        "qkv": 1 / math.sqrt(h),
        "proj": 1 / math.sqrt(h) / attn_scale * depth,
        "ff1": 1 / math.sqrt(h),
        "ff2": 1 / (math.sqrt(k) * GELU_GAIN) * depth,
        "ln_block": 1.0,
        "ln_final": 1 / math.sqrt(h),
    }
