"""Using a trained model: the Classifier class and `novic classify`, with a random decoder on
the tiny CLIP, the bundled photos and deliberately broken files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tiny_decoder import NOUNS, TINY_SPEC, write_tiny_decoder

from novic.classify import Classifier
from novic.cli import main
from novic.embedders import Embedder

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


@pytest.mark.parametrize(
    ("flag", "value"), [("--batch-size", "0"), ("--batch-size", "-1"), ("--top-k", "0"),
                        ("--top-k", "-1"), ("--top-k", "two")]
)  # fmt: skip
def test_cli_checks_batch_size_and_top_k(
    checkpoint: Path, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["classify", "--model", str(checkpoint), flag, value, str(PHOTOS[0])])
    assert exit_.value.code == 2
    assert f"argument {flag}:" in capsys.readouterr().err
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        Classifier(checkpoint, device="cpu", batch_size=0)


def test_cli_downloads_nothing_unless_allowed(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import novic.classify
    from novic.checkpoint import RECORD_KEYS, load_decoder, write_record

    seen: list[bool] = []
    real = novic.classify.load_embedder

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["offline"])
        return real(*args, **kwargs)

    monkeypatch.setattr(novic.classify, "load_embedder", spy)
    args = ["classify", "--model", str(checkpoint), "--device", "cpu", str(PHOTOS[0])]
    assert main(args) == 0 and main([*args, "--allow-download"]) == 0
    assert seen == [True, False]
    assert Classifier(checkpoint, device="cpu").embedder and seen[-1] is True  # the API too
    # a hub embedder missing from the cache: an offline error that names the way out
    _, _, record = load_decoder(checkpoint)
    meta = {**record["meta"], "embedder_spec": {"hub": "novic-tests/no-such-model"}}
    hub = tmp_path / "hub.pt"
    write_record(hub, record["state_dict"], {**{k: record[k] for k in RECORD_KEYS}, "meta": meta})
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["classify", "--model", str(hub), "--device", "cpu", *cache, str(PHOTOS[0])]) == 2
    err = capsys.readouterr().err
    assert "offline (from the cache only)" in err and "--allow-download" in err


def test_cuda_without_a_gpu_is_a_device_error(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device, message in (
        ("cuda", "device 'cuda': CUDA is not available on this machine"),
        ("cuda:1", "device 'cuda:1': CUDA is not available on this machine"),
        ("gpu", "device 'gpu': not a device name"),
    ):
        args = ["classify", "--model", str(checkpoint), "--device", device, str(PHOTOS[0])]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and "checkpoint" not in err


def run_with_timeout(fn: Callable[[], Any], fifo: Path, seconds: float = 20) -> Any:
    """fn() in a thread; if it is still running after `seconds` (blocked on the FIFO), the FIFO
    is opened for writing to release it and the test fails."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with open(fifo, "wb"):
            pass
        thread.join(10)
        pytest.fail(f"reading {fifo} hung")
    return out[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_folder_is_an_image_error_not_a_hang(checkpoint: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    clf = Classifier(checkpoint, device="cpu")
    results = run_with_timeout(lambda: clf.classify([fifo, tmp_path, PHOTOS[0]]), fifo)
    assert [r.ok for r in results] == [False, False, True]
    assert results[0].error == f"{fifo}: cannot read image: a FIFO, not a regular file"
    assert results[1].error == f"{tmp_path}: cannot read image: a folder, not a regular file"


MEMORY_PROBE = """
import resource, sys
from novic.classify import Classifier
from novic.datasets import open_image
from novic.report import sample_grid

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

model, small, big, figure = sys.argv[1:]
clf = Classifier(model, device="cpu", batch_size=4)
sample = [{"predictions": [{"noun": "cat", "prob": 0.5}]}]
for image in (small, big):
    before = peak_mb()
    (result,) = clf.classify([image])
    assert result.ok, result.error
    sample_grid([open_image(image)], sample, figure, "probe")
print(round(peak_mb() - before))
"""


@pytest.mark.parametrize(("suffix", "bound_mb"), [(".jpg", 150), (".png", 750)])
def test_a_12000px_image_is_shrunk_as_it_is_read(
    checkpoint: Path, tmp_path: Path, suffix: str, bound_mb: int
) -> None:
    """Classifying one 12000 x 12000 image and drawing it in the sample figure: the old code
    added 1.1 GB (classify) and 8.1 GB (figure) to the peak; now JPEGs are decoded at 1/8 scale
    (+4 MB) and PNGs need only their decode buffer (+0.57 GB)."""
    big = tmp_path / f"big{suffix}"
    make = "import sys, PIL.Image; PIL.Image.new('RGB', (12000, 12000), 'teal').save(sys.argv[1])"
    subprocess.run([sys.executable, "-c", make, str(big)], check=True)
    probe = [sys.executable, "-c", MEMORY_PROBE, str(checkpoint), str(PHOTOS[0]), str(big),
             str(tmp_path / "figure.png")]  # fmt: skip
    done = subprocess.run(probe, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < bound_mb


CAPTIONS = ["a worn acoustic guitar resting on a sofa", "a cat asleep on a red rug"]


def test_classify_texts_decodes_each_texts_embedding(checkpoint: Path, tiny: Embedder) -> None:
    clf = Classifier(checkpoint, "beam_k5_vnone_gp_t1_a0", device="cpu", batch_size=1)
    results = clf.classify_texts(CAPTIONS)
    assert [r.source for r in results] == CAPTIONS and all(r.ok for r in results)
    assert clf.classify_texts([]) == []
    for r in results:
        assert len(r.predictions) == 5 and {p.noun for p in r.predictions} <= set(NOUNS)
        probs = [p.prob for p in r.predictions]
        assert probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
        assert r.to_dict(1)["text"] == r.source
    # the same as decoding the text's embedding from a separately loaded embedder
    for text, result in zip(CAPTIONS, results, strict=True):
        (direct,) = clf.decode(tiny.encode_texts([text]))
        assert [p.noun for p in result.predictions] == [p.noun for p in direct]
        assert [p.prob for p in result.predictions] == pytest.approx([p.prob for p in direct])


def test_cli_classifies_texts_and_text_files_with_images(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    captions = tmp_path / "captions.txt"
    captions.write_text(f"# a comment\n\n  {CAPTIONS[1]}  \n", encoding="utf-8")
    args = ["classify", "--model", str(checkpoint), "--device", "cpu", "--top-k", "2"]
    status = main([*args, str(PHOTOS[0]), "--text", CAPTIONS[0], "--text-file", str(captions)])
    out = capsys.readouterr()
    assert status == 0 and "3 of 3 images and texts classified on cpu" in out.err
    lines = out.out.strip().splitlines()
    assert [line.rsplit(": ", 1)[0] for line in lines] == [str(PHOTOS[0]), *CAPTIONS]
    assert all(line.count("(") == 2 for line in lines)

    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{CAPTIONS[0]}\n#{CAPTIONS[1]}\n"))
    assert main([*args, "--json", "--text-file", "-"]) == 0
    out = capsys.readouterr()
    (result,) = json.loads(out.out)["results"]
    assert result["text"] == CAPTIONS[0] and len(result["predictions"]) == 2
    assert "1 of 1 texts classified" in out.err


def test_cli_needs_an_input_and_names_an_unreadable_text_file(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.txt"
    comments = tmp_path / "comments.txt"
    comments.write_text("# nothing but a comment\n", encoding="utf-8")
    for extra, message in (
        ([], "nothing to classify: give image files, --text or --text-file"),
        (["--text-file", str(comments)], "nothing to classify"),
        (["--text-file", str(missing)], f"argument --text-file: cannot read {missing}: No such"),
        (["--text-file", str(tmp_path)], f"argument --text-file: cannot read {tmp_path}: Is a"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["classify", "--model", str(checkpoint), *extra])
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err
