"""The report's sample figure: drawn from thumbnails, whatever the size of the images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from novic.report import SAMPLE_SIDE, sample_grid


def test_sample_grid_draws_thumbnails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.axes import Axes

    drawn: list[tuple[int, int]] = []
    real = Axes.imshow

    def spy(self: Axes, image: Any, *args: Any, **kwargs: Any) -> Any:
        drawn.append(image.size)
        return real(self, image, *args, **kwargs)

    monkeypatch.setattr(Axes, "imshow", spy)
    images = [Image.new("RGB", (4000, 3000), "red"), Image.new("RGB", (100, 50), "blue")]
    samples = [
        {"label": "apple", "predictions": [{"noun": "apple", "prob": 0.9}]},
        {"predictions": [{"noun": "sky", "prob": 0.5}, {"noun": "sea", "prob": 0.2}]},
    ]
    sample_grid(images, samples, tmp_path / "samples.png", "two samples")
    assert drawn == [(SAMPLE_SIDE, 288), (100, 50)]  # the big one shrunk, the small one as is
    assert images[0].size == (4000, 3000)  # the caller's image is untouched
    assert Image.open(tmp_path / "samples.png").size[0] > 0
