"""Embedding noise augmentation (reference section 6): perturb unit embeddings, renormalise.

Text embeddings and image embeddings of the same thing differ by a large angle (about 85
degrees for SigLIP B/16); training the decoder on noisy text embeddings makes it tolerate that
gap. Every scheme takes unit vectors e [B, F] and returns unit vectors; angles are in degrees.

    GaussElem       e' = normalize(e + g), g_i ~ N(0, (vec_norm / sqrt(F))^2): E|g|^2 = vec_norm^2,
                    so e is rotated by about atan(vec_norm) (72.9 deg for 3.25 at F = 768)
    GaussVec        e' = normalize(e + r u), u a uniform random direction, r ~ N(0, vec_norm^2)
    UniformAngle    rotate e by theta ~ U[angle_min, angle_max] towards a uniform random direction
                    perpendicular to e
    GaussAngle      the same with theta ~ N(0, angle_std^2) clamped to [-angle_max, angle_max]
    GaussElemUniformAngle   per sample UniformAngle with probability mix_ratio, else GaussElem

Settings (a run's `noise` config): scheme, vec_norm, angle_min, angle_max, angle_std, mix_ratio.
The GaussElem rotation is about atan(vec_norm) at any width F (64 to 768 measured: within 0.3
degrees), so `vec_angle` may state the strength as that angle instead: vec_norm =
tan(vec_angle).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from novic.settings import NoiseSettings


def _normal(
    shape: tuple[int, ...], like: torch.Tensor, gen: torch.Generator | None
) -> torch.Tensor:
    return torch.randn(shape, generator=gen, device=like.device, dtype=like.dtype)


def _uniform(
    shape: tuple[int, ...], like: torch.Tensor, gen: torch.Generator | None
) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=like.device, dtype=like.dtype)


def gauss_elem(
    e: torch.Tensor, vec_norm: float, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Add N(0, (vec_norm/sqrt(F))^2) to every element, then renormalise."""
    sigma = vec_norm / math.sqrt(e.shape[-1])
    return F.normalize(e + sigma * _normal(e.shape, e, gen), dim=-1)


def gauss_vec(e: torch.Tensor, vec_norm: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Add a uniformly oriented vector of N(0, vec_norm^2) length, then renormalise."""
    direction = F.normalize(_normal(e.shape, e, gen), dim=-1)
    length = vec_norm * _normal((e.shape[0], 1), e, gen)
    return F.normalize(e + length * direction, dim=-1)


def rotate(
    e: torch.Tensor, degrees: torch.Tensor, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Rotate each unit row of `e` by `degrees` [B] towards a random perpendicular direction."""
    d = _normal(e.shape, e, gen)
    d = F.normalize(d - (d * e).sum(-1, keepdim=True) * e, dim=-1)
    theta = torch.deg2rad(degrees).unsqueeze(-1)
    return F.normalize(e * torch.cos(theta) + d * torch.sin(theta), dim=-1)


def uniform_angle(
    e: torch.Tensor, angle_min: float, angle_max: float, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Rotate by an angle uniform in [angle_min, angle_max] degrees."""
    u = _uniform((e.shape[0],), e, gen)
    return rotate(e, angle_min + (angle_max - angle_min) * u, gen)


def gauss_angle(
    e: torch.Tensor, angle_std: float, angle_max: float, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Rotate by an angle ~ N(0, angle_std^2) degrees, clamped to [-angle_max, angle_max]."""
    theta = (angle_std * _normal((e.shape[0],), e, gen)).clamp(-angle_max, angle_max)
    return rotate(e, theta, gen)


def apply_noise(
    e: torch.Tensor, cfg: NoiseSettings, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Apply `cfg`'s scheme to unit embeddings `e` [B, F] (float), drawing from `gen`."""
    s = cfg.scheme
    if s == "none":
        return e
    if s == "GaussElem":
        return gauss_elem(e, cfg.strength, gen)
    if s == "GaussVec":
        return gauss_vec(e, cfg.strength, gen)
    if s == "UniformAngle":
        return uniform_angle(e, cfg.angle_min, cfg.angle_max, gen)
    if s == "GaussAngle":
        return gauss_angle(e, cfg.angle_std, cfg.angle_max, gen)
    # GaussElemUniformAngle: both versions, then a per-sample choice.
    gauss = gauss_elem(e, cfg.strength, gen)
    uniform = uniform_angle(e, cfg.angle_min, cfg.angle_max, gen)
    pick = _uniform((e.shape[0], 1), e, gen) < cfg.mix_ratio
    return torch.where(pick, uniform, gauss)


def angles_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between corresponding unit rows of `a` and `b`."""
    cos = (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos))
