"""Noise schemes: the paper's angle statistics, unit outputs, the mix ratio, bad settings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from novic.noise import angles_deg, apply_noise, gauss_elem
from novic.schema import ConfigError
from novic.settings import NOISE_SCHEMES, NoiseSettings

N = 10_000


def unit(n: int, f: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, f, generator=g), dim=-1)


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gauss_elem_matches_the_paper_figure() -> None:
    """GaussElem with G = 3.25 at F = 768 rotates by 72.9 degrees on average, std ~1.94."""
    e = unit(N, 768)
    angles = angles_deg(e, gauss_elem(e, 3.25, gen()))
    assert angles.mean().item() == pytest.approx(72.9, abs=0.1)
    assert math.degrees(math.atan(3.25)) == pytest.approx(72.9, abs=0.05)
    assert angles.std().item() == pytest.approx(1.94, abs=0.1)


def test_gauss_elem_element_sigma_is_g_over_sqrt_f() -> None:
    e = torch.zeros(100, 768)
    e[:, 0] = 1
    g = torch.Generator().manual_seed(3)
    sigma = 3.25 / math.sqrt(768)
    assert sigma == pytest.approx(0.1173, abs=1e-4)
    noise = sigma * torch.randn(e.shape, generator=g)
    out = gauss_elem(e, 3.25, torch.Generator().manual_seed(3))
    assert torch.allclose(out, F.normalize(e + noise, dim=-1), atol=1e-6)


def test_uniform_angle_is_uniform_in_the_range() -> None:
    e = unit(N, 256)
    cfg = NoiseSettings(scheme="UniformAngle", angle_min=45, angle_max=75)
    angles = angles_deg(e, apply_noise(e, cfg, gen()))
    assert angles.min().item() >= 45 - 1e-3 and angles.max().item() <= 75 + 1e-3
    # uniform: mean 60, std 30/sqrt(12), every 3-degree bin holds ~1/10 of the samples
    assert angles.mean().item() == pytest.approx(60, abs=0.4)
    assert angles.std().item() == pytest.approx(30 / math.sqrt(12), abs=0.2)
    counts = torch.histc(angles, bins=10, min=45, max=75)
    assert torch.all((counts / N - 0.1).abs() < 0.02)


def test_mix_picks_uniform_angle_with_the_mix_ratio() -> None:
    """In F = 768 GaussElem angles lie within 72.9 +- 10 degrees, so UniformAngle [20, 40]
    samples are told apart by their angle alone."""
    e = unit(N, 768)
    cfg = NoiseSettings(
        scheme="GaussElemUniformAngle", vec_norm=3.25, angle_min=20, angle_max=40, mix_ratio=0.15
    )
    angles = angles_deg(e, apply_noise(e, cfg, gen()))
    uniform = angles < 50
    assert uniform.float().mean().item() == pytest.approx(0.15, abs=0.012)
    assert angles[uniform].min().item() >= 20 - 1e-3 and angles[uniform].max().item() <= 40 + 1e-3
    assert angles[~uniform].mean().item() == pytest.approx(72.9, abs=0.1)


def test_gauss_angle_is_a_clamped_half_normal() -> None:
    e = unit(N, 128)
    cfg = NoiseSettings(scheme="GaussAngle", angle_std=20, angle_max=30)
    angles = angles_deg(e, apply_noise(e, cfg, gen()))
    assert angles.max().item() <= 30 + 1e-3
    # |N(0, 20)| clamped at 30: P(|x| >= 30) = 2(1 - Phi(1.5)) = 0.1336
    assert (angles > 30 - 1e-3).float().mean().item() == pytest.approx(0.1336, abs=0.01)
    assert (angles < 20).float().mean().item() == pytest.approx(0.6827, abs=0.01)


def test_gauss_vec_adds_a_normal_length_vector() -> None:
    e = unit(N, 512)
    cfg = NoiseSettings(scheme="GaussVec", vec_norm=1.0)
    angles = angles_deg(e, apply_noise(e, cfg, gen()))
    # a random direction is nearly perpendicular to e, so the angle is about atan(|r|)
    expected = torch.rad2deg(torch.atan(torch.randn(N, generator=gen(9)).abs())).mean()
    assert angles.mean().item() == pytest.approx(expected.item(), abs=0.5)


@pytest.mark.parametrize("scheme", NOISE_SCHEMES)
def test_every_scheme_returns_unit_vectors_reproducibly(scheme: str) -> None:
    e = unit(64, 32)
    cfg = NoiseSettings(scheme=scheme, angle_std=10)
    out = apply_noise(e, cfg, gen(5))
    assert out.shape == e.shape and out.dtype == e.dtype
    assert torch.allclose(out.norm(dim=-1), torch.ones(64), atol=1e-5)
    assert torch.equal(out, apply_noise(e, cfg, gen(5)))
    assert torch.equal(out, e) == (scheme == "none")


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"scheme": "Gauss"}, "noise.scheme"),
        ({"scheme": "GaussElem", "vec_norm": 0}, "noise.vec_norm"),
        ({"scheme": "UniformAngle", "angle_min": 80, "angle_max": 75}, "noise.angle_min"),
        ({"scheme": "GaussAngle", "angle_std": 0}, "noise.angle_std"),
        ({"mix_ratio": 1.5}, "noise.mix_ratio"),
    ],
)
def test_bad_settings_name_the_key(settings: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        NoiseSettings(**settings)


@pytest.mark.parametrize("f", [64, 384, 768])
@pytest.mark.parametrize("angle", [30, 52, 72.9])
def test_vec_angle_is_the_mean_gauss_elem_rotation(f: int, angle: float) -> None:
    """`vec_angle` states the GaussElem strength as the mean rotation, at any width F."""
    e = unit(N, f)
    cfg = NoiseSettings(scheme="GaussElem", vec_angle=angle)
    angles = angles_deg(e, apply_noise(e, cfg, gen()))
    assert angles.mean().item() == pytest.approx(angle, abs=0.5)


def test_vec_angle_sets_the_strength_and_none_keeps_vec_norm() -> None:
    cfg = NoiseSettings(scheme="GaussVec", vec_norm=1.0, vec_angle=60)
    assert cfg.strength == pytest.approx(math.sqrt(3))  # tan 60 degrees, vec_norm ignored
    assert NoiseSettings(scheme="GaussVec", vec_norm=1.5, vec_angle=None).strength == 1.5
    e = unit(256, 384)
    by_norm = NoiseSettings(scheme="GaussVec", vec_norm=math.sqrt(3))
    assert torch.allclose(apply_noise(e, cfg, gen()), apply_noise(e, by_norm, gen()), atol=1e-6)
    by_angle = NoiseSettings(scheme="GaussElemUniformAngle", vec_norm=9.0, vec_angle=45)
    assert torch.allclose(
        apply_noise(e, by_angle, gen()),
        apply_noise(e, NoiseSettings(scheme="GaussElemUniformAngle", vec_norm=1.0), gen()),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("scheme", "angle"),
    [
        *[("UniformAngle", a) for a in (0, -5, 90, 120)],
        *[("GaussElem", a) for a in (0, -5, 90, 120)],
    ],
)
def test_vec_angle_out_of_range_names_the_key(scheme: str, angle: float) -> None:
    with pytest.raises(ConfigError, match=r"noise\.vec_angle must be in \(0, 90\)"):
        NoiseSettings(scheme=scheme, vec_angle=angle)
