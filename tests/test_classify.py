"""Using a trained model: the Classifier class and `novic classify`, with a random decoder on
the tiny CLIP, the bundled photos and deliberately broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from tiny_decoder import NOUNS, TINY_SPEC, write_tiny_decoder

from novic.classify import Classifier
from novic.cli import main

REPO = Path(__file__).resolve().parent.parent
PHOTOS = sorted((REPO / "resources" / "sample_images").glob("*.jpg"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_decoder(tmp_path_factory.mktemp("model") / "decoder.pt")


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "broken.jpg"
    path.write_bytes(b"\xff\xd8 this is not a jpeg")
    return path


def test_classifier_loads_the_checkpoints_embedder_and_ranks_its_nouns(
    checkpoint: Path, broken: Path, tmp_path: Path
) -> None:
    clf = Classifier(checkpoint, "beam_k5_vnone_gp_t1_a0", device="cpu", batch_size=2)
    assert clf.embedder.spec.to_dict() == TINY_SPEC
    assert clf.nouns == NOUNS
    missing = tmp_path / "nowhere.png"
    inputs = [*PHOTOS[:3], broken, Image.new("RGB", (40, 30), "red"), missing, PHOTOS[3]]
    results = clf.classify(inputs)
    assert [r.ok for r in results] == [True, True, True, False, True, False, True]
    assert "broken.jpg" in results[3].error and "cannot read image" in results[3].error
    assert "nowhere.png" in results[5].error
    for r in results:
        if r.ok:
            assert len(r.predictions) == 5
            assert {p.noun for p in r.predictions} <= set(NOUNS)
            probs = [p.prob for p in r.predictions]
            assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    # the same image gives the same answer in any batch
    again = clf.classify([PHOTOS[1]])[0]
    assert [p.noun for p in again.predictions] == [p.noun for p in results[1].predictions]


def test_guide_limits_the_answers(checkpoint: Path) -> None:
    clf = Classifier(checkpoint, "beam_k2_vnone_gp_t1_a0", guide=["cat", "dog"], device="cpu")
    result = clf.classify(PHOTOS[:2])
    assert all(sorted(p.noun for p in r.predictions) == ["cat", "dog"] for r in result)


def test_cli_prints_top_k_and_json_and_reports_bad_files(
    checkpoint: Path, broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = [str(PHOTOS[0]), str(broken), str(PHOTOS[1])]
    status = main(["classify", "--model", str(checkpoint), "--top-k", "3", *images])
    out = capsys.readouterr()
    assert status == 1  # one image failed, the others were classified
    lines = out.out.strip().splitlines()
    assert len(lines) == 3 and "ERROR" in lines[1] and "broken.jpg" in lines[1]
    assert lines[0].startswith(str(PHOTOS[0])) and lines[0].count("(") == 3
    assert "2 of 3 images classified on cpu" in out.err

    status = main(["classify", "--model", str(checkpoint), "--json", "--device", "cpu",
                   "--gencfg", "greedy_k1_vnone_gp_t1_a0", str(PHOTOS[0])])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert status == 0 and data["gencfg"] == "greedy_k1_vnone_gp_t1_a0"
    (pred,) = data["results"][0]["predictions"]
    assert pred["noun"] in NOUNS and 0 < pred["prob"] <= 1


def test_cli_names_a_bad_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "decoder.pt"
    bad.write_bytes(b"nothing")
    assert main(["classify", "--model", str(bad), str(PHOTOS[0])]) == 2
    assert "novic classify:" in capsys.readouterr().err
