"""The decoder file: safetensors weights + a JSON record, pickles refused (a payload never runs
without the explicit flag), malformed files named in a clear error, and the converter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import safe_open, save_file
from tiny_decoder import NOUNS, write_tiny_decoder

from novic.checkpoint import (
    CHECKPOINT_FORMAT,
    PICKLED_FORMAT,
    RECORD_KEYS,
    CheckpointError,
    load_decoder,
    write_record,
)
from novic.cli import main

REPO = Path(__file__).resolve().parent.parent
PHOTO = REPO / "resources" / "sample_images" / "astronaut.jpg"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_decoder(tmp_path_factory.mktemp("model") / "decoder.pt")


@pytest.fixture(scope="module")
def parts(checkpoint: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tiny decoder's weights and record (RECORD_KEYS only)."""
    _, _, record = load_decoder(checkpoint)
    return record["state_dict"], {k: record[k] for k in RECORD_KEYS}


class Payload:
    """Unpickling this runs code: it writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def old_pickle(path: Path, parts: tuple[dict, dict], **extra: Any) -> Path:
    """A decoder file in the old pickled format (torch.save of one dict)."""
    tensors, record = parts
    torch.save({"format": PICKLED_FORMAT, **record, "state_dict": tensors, **extra}, path)
    return path


def test_decoder_file_is_safetensors_with_a_json_record(checkpoint: Path) -> None:
    assert not checkpoint.read_bytes()[:4].startswith((b"PK", b"\x80"))  # no pickle
    with safe_open(str(checkpoint), framework="pt") as f:
        header = f.metadata()
        keys = set(f.keys())
    assert header["format"] == CHECKPOINT_FORMAT == "novic.decoder/2"
    stored = json.loads(header["record"])
    assert sorted(stored) == sorted(RECORD_KEYS) and stored["targets"]["nouns"][1:] == NOUNS
    model, targets, record = load_decoder(checkpoint)
    assert keys == set(model.state_dict()) == set(record["state_dict"])
    assert record["format"] == CHECKPOINT_FORMAT and record["summary"] == {"chunk": 1}
    assert record["meta"]["embedder_spec"] == {"tiny": {"seed": 0}}
    assert targets.nouns[1:] == NOUNS and not model.training


def test_a_header_length_that_starts_like_a_pickle_is_still_safetensors(
    parts: tuple[dict, dict], tmp_path: Path
) -> None:
    """safetensors files begin with their header length: one ending in byte 0x80 (one file
    in 256) must not be taken for a pickle."""
    tensors, record = parts
    path = tmp_path / "decoder.pt"
    for pad in range(512):
        write_record(path, tensors, {**record, "meta": {"pad": "x" * pad}})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length with low byte 0x80")
    _, targets, loaded = load_decoder(path)
    assert loaded["meta"]["pad"] == "x" * pad and targets.nouns[1:] == NOUNS


def test_a_pickled_payload_never_runs_without_the_flag(
    tmp_path: Path, parts: tuple[dict, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "marker"
    for name in ("decoder.pt", "decoder.safetensors"):  # the name does not matter
        evil = old_pickle(tmp_path / name, parts, extra=Payload(marker))
        with pytest.raises(CheckpointError, match=rf"{name}: a pickled decoder checkpoint"):
            load_decoder(evil)
        assert main(["classify", "--model", str(evil), "--device", "cpu", str(PHOTO)]) == 2
        err = capsys.readouterr().err
        assert f"novic classify: {evil}: a pickled" in err and "--trust-pickled" in err
        # the converter uses the restricted unpickler only
        assert main(["convert-checkpoint", str(evil), str(tmp_path / "new.pt")]) == 2
        assert "restricted unpickler refused it" in capsys.readouterr().err
        assert not marker.exists() and not (tmp_path / "new.pt").exists()


def test_allow_pickle_tries_the_restricted_unpickler_first(
    tmp_path: Path, parts: tuple[dict, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    old = old_pickle(tmp_path / "old.pt", parts)
    calls: list[bool] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["weights_only"])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model, targets, record = load_decoder(old, allow_pickle=True)
    assert calls == [True]  # plain tensors and data: the full unpickler is never needed
    assert record["format"] == PICKLED_FORMAT and targets.nouns[1:] == NOUNS
    for key, value in parts[0].items():
        assert torch.equal(model.state_dict()[key], value)


def test_cli_reads_an_old_pickle_only_when_trusted_and_converts_it(
    tmp_path: Path, parts: tuple[dict, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    old = old_pickle(tmp_path / "decoder.pt", parts)
    args = ["classify", "--model", str(old), "--device", "cpu", "--top-k", "2", str(PHOTO)]
    assert main(args) == 2
    assert main([*args, "--trust-pickled-checkpoint"]) == 0
    trusted = capsys.readouterr().out
    assert main(["convert-checkpoint", str(old), str(old)]) == 0  # in place
    assert not old.read_bytes().startswith(b"PK")
    assert main(args) == 0
    assert capsys.readouterr().out == trusted  # the same predictions


def raw_file(path: Path, tensors: dict, metadata: dict[str, str] | None) -> Path:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def record_text(record: dict, drop: str = "", **changes: Any) -> str:
    return json.dumps({**{k: v for k, v in record.items() if k != drop}, **changes})


MALFORMED = {
    "truncated": "truncated or another kind of file",
    "empty": "truncated or another kind of file",
    "text": "truncated or another kind of file",
    "no_metadata": "a safetensors file with no format tag, not novic.decoder/2",
    "other_format": "a safetensors file with format 'novic.decoder/9'",
    "bad_json": "the metadata key 'record' is not valid JSON",
    "json_list": "the metadata key 'record' is not a JSON object",
    "missing_targets": "the decoder record lacks targets",
    "meta_not_object": "meta must be objects",
    "bad_model": "bad model hyperparameters in the record",
    "bad_targets": "bad target tokens in the record",
    "missing_weight": "the weights do not fit the model",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_checkpoints_give_a_clear_error(
    case: str,
    tmp_path: Path,
    checkpoint: Path,
    parts: tuple[dict, dict],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tensors, record = parts
    path = tmp_path / f"{case}.pt"
    meta = {"format": CHECKPOINT_FORMAT}
    if case == "truncated":
        path.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("a decoder, honestly")
    elif case == "no_metadata":
        raw_file(path, tensors, None)
    elif case == "other_format":
        raw_file(path, tensors, {"format": "novic.decoder/9", "record": record_text(record)})
    elif case == "bad_json":
        raw_file(path, tensors, {**meta, "record": record_text(record)[:-5]})
    elif case == "json_list":
        raw_file(path, tensors, {**meta, "record": "[1, 2]"})
    elif case == "missing_targets":
        raw_file(path, tensors, {**meta, "record": record_text(record, drop="targets")})
    elif case == "meta_not_object":
        raw_file(path, tensors, {**meta, "record": record_text(record, meta="tiny")})
    elif case == "bad_model":
        model = {**record["model"], "layers": 0}
        raw_file(path, tensors, {**meta, "record": record_text(record, model=model)})
    elif case == "bad_targets":
        raw_file(path, tensors, {**meta, "record": record_text(record, targets={"nouns": []})})
    elif case == "missing_weight":
        write_record(path, {k: v for k, v in tensors.items() if k != "ln.weight"}, record)
    with pytest.raises(CheckpointError) as error:
        load_decoder(path)
    assert str(error.value).startswith(f"{path}: ") and MALFORMED[case] in str(error.value)
    assert main(["classify", "--model", str(path), "--device", "cpu", str(PHOTO)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"novic classify: {path}: ") and "Traceback" not in err


def test_missing_file_and_unstorable_record_name_the_file(
    tmp_path: Path, parts: tuple[dict, dict]
) -> None:
    with pytest.raises(CheckpointError, match=r"nowhere\.pt: cannot read .*No such file"):
        load_decoder(tmp_path / "nowhere.pt")
    tensors, record = parts
    bad = {**record, "meta": {"when": object()}}
    with pytest.raises(CheckpointError, match=r"out\.pt: cannot write .*object"):
        write_record(tmp_path / "out.pt", tensors, bad)
    assert not (tmp_path / "out.pt").exists()
