"""Training: chunk arithmetic, schedule, optimizer groups, the multi-target loss, a tiny run
that learns, checkpoints and an exact resume after a kill, batches prepared ahead in a thread."""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from memory_loader import MemoryLoader

from novic import shards
from novic.checkpoint import load_decoder
from novic.loader import EmbeddingLoader
from novic.mix import Mix, MixShard, MixSource
from novic.model import ObjectDecoder
from novic.settings import DecoderSettings, RunSettings, TrainSettings
from novic.tokens import TargetTokens
from novic.train import (
    PREFETCH_BATCHES,
    READ_AHEAD_THREAD,
    Loader,
    Position,
    cosine_lr,
    evaluate,
    flatten_targets,
    param_groups,
    plan_chunks,
    stream,
    target_multiple,
    token_loss,
    train_decoder,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- the reference's chunk arithmetic ---------------------------------------------------------

# FT0 (reference section 2-4): 42,919 nouns; M1 = 97 x 110,040 + 79 x 34,419 rows, three
# multisets, plus captions (20 x 144,459 rows) four times.
FT0_NOUNS, FT2_NOUNS = 42_919, 11_897
FT0_ROWS = 3 * (97 * 110_040 + 79 * 34_419) + 4 * 20 * 144_459


def test_ft0_chunks_match_the_reference_checkpoint() -> None:
    assert FT0_ROWS == 51_735_663  # the paper's 51.7M samples
    plan = plan_chunks(FT0_NOUNS, FT0_ROWS, batch_size=512, chunk_scale=50, epochs=18)
    assert plan.chunk_batches == 4_192  # ~2.15M samples per chunk
    assert plan.chunks == 433  # checkpoint ovod_chunk0433
    assert plan.chunks * plan.chunk_batches * 512 == pytest.approx(0.93e9, rel=0.01)


def test_ft2_chunks_match_the_reference_checkpoint() -> None:
    """The FT2 epoch is known only as ~29.7M samples; every size that rounds to it gives 899
    chunks of 1,162 batches (~595k samples), as checkpoint ovod_chunk0899 says."""
    for rows in (29_715_000, 29_730_000, 29_745_000):
        plan = plan_chunks(FT2_NOUNS, rows, batch_size=512, chunk_scale=50, epochs=18)
        assert (plan.chunk_batches, plan.chunks) == (1_162, 899)
    assert pytest.approx(595e3, rel=0.001) == 1_162 * 512


def test_too_little_data_for_one_chunk_names_the_keys() -> None:
    with pytest.raises(ValueError, match=r"train\.epochs.*train\.chunk_scale"):
        plan_chunks(1000, 5_000, batch_size=512, chunk_scale=50, epochs=1)


def test_cosine_schedule_per_chunk() -> None:
    assert cosine_lr(1.5e-3, 0, 433) == 1.5e-3
    assert cosine_lr(1.5e-3, 433 / 2, 433) == pytest.approx(0.75e-3)
    lrs = [cosine_lr(1.5e-3, c, 10) for c in range(10)]
    assert all(a > b for a, b in itertools.pairwise(lrs)) and lrs[-1] > 0
    # torch's CosineAnnealingLR stepped once per chunk gives the same values
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.5e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0)
    for c in range(10):
        assert opt.param_groups[0]["lr"] == pytest.approx(lrs[c])
        opt.step()
        sched.step()


def test_weight_decay_only_on_matrices() -> None:
    model = ObjectDecoder(
        DecoderSettings(embed_dim=8, vocab_size=10, max_tokens=4, layers=1, hidden=16, heads=2)
    )
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"])
    assert {names[id(p)] for p in no_decay["params"]} == {
        "blocks.0.ln1.weight",
        "blocks.0.ln2.weight",
        "ln.weight",
    }
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_bad_train_settings_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"train\.accum"):
        TrainSettings(accum=0)
    with pytest.raises(ValueError, match=r"train\.beta2"):
        TrainSettings(beta2=1.0)
    with pytest.raises(ValueError, match=r"train: unknown key\(s\) \['learning_rate'\]"):
        RunSettings.from_config({"train": {"learning_rate": 1}})


# --- the loss ----------------------------------------------------------------------------------


def toy_targets() -> TargetTokens:
    """Four nouns (dictionary ids 10..13) of 1 to 3 tokens over compact tokens 1..5."""
    tokens = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [2, 3, 0, 0], [4, 5, 1, 0], [5, 0, 0, 0]])
    return TargetTokens(
        ["", "a", "b c", "d e a", "e"], [0, 10, 11, 12, 13], [99, 1, 2, 3, 4, 5], tokens
    )


def two_samples() -> tuple[torch.Tensor, ...]:
    """Embedding, targets, weights, lookup and table of two samples: one target, then three."""
    t = toy_targets()
    lookup, table = torch.from_numpy(t.lookup()), torch.from_numpy(t.tokens)
    targets = torch.tensor([[11, 0, 0], [10, 12, 13]])
    weights = torch.tensor([[1.0, 0, 0], [1 / 3, 1 / 3, 1 / 3]])
    return F.normalize(torch.randn(2, 8), dim=-1), targets, weights, lookup, table


def test_multi_target_loss_is_the_weighted_token_mean() -> None:
    batch = flatten_targets(*two_samples())
    assert batch.rows.tolist() == [0, 1, 1, 1]
    assert batch.lengths.tolist() == [3, 2, 4, 2]  # tokens up to and including the end token
    logits = torch.randn(4, 4, 6)
    loss_sum, count, correct = token_loss(logits, batch)
    # by hand: per target sum of CE over its tokens, weighted; count = sum of w x n
    expected_sum, expected_count, expected_correct = 0.0, 0.0, 0.0
    for a, (w, n) in enumerate(zip(batch.weights.tolist(), batch.lengths.tolist(), strict=True)):
        for pos in range(n):
            tok = batch.tokens[a, pos]
            expected_sum += w * F.cross_entropy(logits[a, pos][None], tok[None]).item()
            expected_correct += w * float(logits[a, pos].argmax() == tok)
        expected_count += w * n
    assert expected_count == pytest.approx(3 + (2 + 4 + 2) / 3)
    assert loss_sum.item() == pytest.approx(expected_sum, rel=1e-5)
    assert count.item() == pytest.approx(expected_count)
    assert correct.item() == pytest.approx(expected_correct)


def test_padding_the_targets_for_a_gpu_changes_no_loss() -> None:
    samples = two_samples()
    plain = flatten_targets(*samples)
    padded = flatten_targets(*samples, pad_to=8)
    assert len(padded.rows) == 8 and padded.weights[4:].eq(0).all()
    assert padded.rows[:4].tolist() == plain.rows.tolist()
    logits = torch.randn(8, 4, 6)
    sums = [torch.stack(token_loss(x, b)) for x, b in ((logits[:4], plain), (logits, padded))]
    torch.testing.assert_close(sums[0], sums[1])
    assert target_multiple(torch.device("cpu")) == 1
    assert target_multiple(torch.device("cuda")) == 64


def test_dropping_zero_weight_slots_equals_the_reference_masking() -> None:
    """The reference repeats every sample M times and masks zero-weight slots; keeping only
    the weighted slots gives the same loss."""
    t = toy_targets()
    lookup, table = torch.from_numpy(t.lookup()), torch.from_numpy(t.tokens)
    torch.manual_seed(0)
    model = ObjectDecoder(
        DecoderSettings(
            embed_dim=8,
            vocab_size=6,
            max_tokens=4,
            layers=1,
            hidden=16,
            heads=2,
            dropout=0,
            input_dropout=0,
        )
    )
    targets = torch.tensor([[11, 0, 0], [10, 12, 0], [13, 11, 10]])
    weights = torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])
    emb = F.normalize(torch.randn(3, 8), dim=-1)
    batch = flatten_targets(emb, targets, weights, lookup, table)
    loss_sum, count, _ = token_loss(model(emb[batch.rows], batch.tokens[:, :-1]), batch)
    # reference form: all B x M slots, padding slots have weight 0
    tokens = table[lookup[targets.reshape(-1)]]
    logits = model(emb.repeat_interleave(3, 0), tokens[:, :-1])
    ce = F.cross_entropy(logits.reshape(-1, 6), tokens.reshape(-1), reduction="none").view(9, 4)
    n = (tokens != 0).sum(1) + 1
    valid = torch.arange(4)[None] < n[:, None]
    w = weights.reshape(-1)
    ref = (w * (ce * valid).sum(1)).sum() / (w * n).sum()
    assert (loss_sum / count).item() == pytest.approx(ref.item(), rel=1e-6)


def test_a_weighted_target_outside_the_vocabulary_is_an_error() -> None:
    t = toy_targets()
    lookup, table = torch.from_numpy(t.lookup()), torch.from_numpy(t.tokens)
    emb = torch.zeros(1, 8)
    with pytest.raises(ValueError, match="noun id 7"):
        flatten_targets(emb, torch.tensor([[7]]), torch.tensor([[1.0]]), lookup, table)
    with pytest.raises(ValueError, match="noun id 99"):
        flatten_targets(emb, torch.tensor([[99]]), torch.tensor([[1.0]]), lookup, table)
    # a zero-weight slot may hold anything
    flatten_targets(emb, torch.tensor([[10, 7]]), torch.tensor([[1.0, 0.0]]), lookup, table)


# --- a tiny training run -----------------------------------------------------------------------


NOUN_IDS = [10, 11, 12, 13, 14, 15]
NOUN_TOKENS = [[1, 0, 0], [2, 3, 0], [2, 4, 0], [5, 1, 0], [3, 0, 0], [4, 5, 0]]


def toy_data(rows: int = 480, dim: int = 16) -> tuple[TargetTokens, MemoryLoader]:
    """Each noun has its own direction; a sample is its (one or two) nouns' directions summed."""
    table = np.zeros((len(NOUN_IDS) + 1, 3), dtype=np.int64)
    table[1:] = NOUN_TOKENS
    t = TargetTokens(["", *"abcdef"], [0, *NOUN_IDS], [99, 1, 2, 3, 4, 5], table)
    g = torch.Generator().manual_seed(0)
    directions = F.normalize(torch.randn(len(NOUN_IDS), dim, generator=g), dim=-1)
    first = torch.randint(0, len(NOUN_IDS), (rows,), generator=g)
    second = torch.randint(0, len(NOUN_IDS), (rows,), generator=g)
    pair = torch.rand(rows, generator=g) < 0.3
    emb = directions[first] + pair[:, None] * directions[second]
    targets = torch.stack(
        [torch.tensor(NOUN_IDS)[first], torch.where(pair, torch.tensor(NOUN_IDS)[second], 0)], 1
    )
    weights = torch.stack([torch.where(pair, 0.5, 1.0), torch.where(pair, 0.5, 0.0)], 1)
    return t, MemoryLoader(F.normalize(emb, dim=-1), targets, weights, batch_size=16)


SETTINGS = {
    "model": {
        "prefix_tokens": 2,
        "layers": 1,
        "hidden": 32,
        "heads": 4,
        "feedforward_scale": 1.0,
        "dropout": 0.1,
        "input_dropout": 0.1,
    },
    "noise": {"scheme": "GaussElem", "vec_norm": 0.3},
    "train": {
        "batch_size": 16,
        "accum": 3,
        "lr": 1e-2,
        "epochs": 8,
        "chunk_scale": 10,
        "seed": 0,
        "buffer_rows": 64,
    },
}
META = {"embedder": {"name": "toy"}, "run": "toy"}


def run(tmp: Path, settings: dict = SETTINGS, loader: Loader | None = None, **kwargs) -> dict:
    targets, toy_loader = toy_data()
    return train_decoder(
        loader or toy_loader,
        targets,
        RunSettings.from_config(settings),
        tmp / "decoder.pt",
        tmp / "metrics.jsonl",
        tmp / "work",
        torch.device("cpu"),
        META,
        checkpoint_every=2,
        **kwargs,
    )


def read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == READ_AHEAD_THREAD]


def metrics(tmp: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("train")
    run(tmp)
    return tmp


def test_tiny_run_learns_and_logs_every_chunk(reference_run: Path, caplog) -> None:
    assert PREFETCH_BATCHES > 0  # the reference run prepares batches in a thread
    lines = metrics(reference_run)
    # 6 nouns x 10 / 16 -> 4 batches per chunk; 30 batches per epoch x 8 epochs -> 60 chunks
    assert [m["chunk"] for m in lines] == list(range(1, 61))
    first, last = lines[0], lines[-1]
    assert set(first) >= {
        "loss",
        "accuracy",
        "accuracy_smoothed",
        "lr",
        "grad_norm",
        "samples_per_s",
        "eta_s",
        "elapsed_s",
        "samples",
        "epoch",
    }
    assert last["samples"] == 60 * 4 * 16 and last["eta_s"] == 0
    assert first["lr"] == 1e-2 and last["lr"] < 1e-4
    assert last["loss"] < first["loss"] / 3
    assert last["accuracy_smoothed"] > 0.85
    # 240 raw batches, accum 3: 80 optimizer steps
    assert sum(m["optimizer_steps"] for m in lines) == 80
    assert not (reference_run / "work" / "checkpoint.pt").exists()


def test_decoder_file_holds_what_decoding_needs(reference_run: Path) -> None:
    model, targets, record = load_decoder(reference_run / "decoder.pt")
    assert targets.nouns == ["", *"abcdef"] and targets.noun_ids == [0, *NOUN_IDS]
    assert record["meta"] == META and record["noise"]["scheme"] == "GaussElem"
    assert record["train"]["accum"] == 3 and record["summary"]["chunk"] == 60
    assert model.cfg.prefix_tokens == 2 and not model.training
    # greedy decoding of clean single-noun embeddings gives the noun
    _, loader = toy_data()
    single = loader.weights[:, 1] == 0
    emb, ids = loader.embedding[single][:50], loader.targets[single][:50, 0]
    tokens = torch.zeros(50, 0, dtype=torch.long)
    with torch.no_grad():
        for _ in range(targets.max_tokens - 1):
            nxt = model(emb, tokens)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], 1)
    expected = torch.from_numpy(targets.tokens)[torch.from_numpy(targets.lookup())[ids]][:, :-1]
    assert (tokens == expected).all(1).float().mean() > 0.9


def test_killed_run_resumes_on_the_same_trajectory(reference_run: Path, tmp_path: Path) -> None:
    class Killed(Exception):
        pass

    def kill_after_5(done: int) -> None:
        if done == 5:  # checkpoint after chunk 4; chunk 5 (mid-accumulation) is lost
            raise Killed

    with pytest.raises(Killed):
        run(tmp_path, on_chunk=kill_after_5)
    assert (tmp_path / "work" / "checkpoint.pt").exists()
    assert not (tmp_path / "decoder.pt").exists()
    run(tmp_path)
    same_trajectory(tmp_path, reference_run)
    one, two = (load_decoder(p / "decoder.pt")[0].state_dict() for p in (tmp_path, reference_run))
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path: Path, caplog) -> None:
    def kill(done: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    short = {**SETTINGS, "train": {**SETTINGS["train"], "epochs": 1}}
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, short, on_chunk=kill)
    other = {**short, "noise": {"scheme": "UniformAngle", "angle_min": 10, "angle_max": 20}}
    with caplog.at_level(logging.INFO, logger="novic.train"):
        run(tmp_path, other)
    assert "ignoring" in caplog.text and "resuming" not in caplog.text
    assert [m["chunk"] for m in metrics(tmp_path)] == list(range(1, 8))
    assert math.isfinite(metrics(tmp_path)[-1]["loss"])


def test_heldout_rows_are_evaluated_without_noise(reference_run: Path) -> None:
    model, targets, _ = load_decoder(reference_run / "decoder.pt")
    _, loader = toy_data(rows=96)
    result = evaluate(model, loader, targets, torch.device("cpu"))
    assert result["rows"] == 96 and 0.85 < result["accuracy"] <= 1
    assert not model.training
    # evaluating twice gives the same numbers: eval mode, no noise, no dropout
    assert evaluate(model, loader, targets, torch.device("cpu")) == result
    assert evaluate(model, loader, targets, torch.device("cpu"), prefetch_batches=2) == result


def test_a_loader_without_batches_is_an_error() -> None:
    _, loader = toy_data(rows=8)  # less than one batch of 16
    with pytest.raises(RuntimeError, match="no batches"):
        next(stream(loader, Position()))


# --- damaged work files ------------------------------------------------------------------------


class Killed(Exception):
    pass


def kill_after(chunk: int):
    def on_chunk(done: int) -> None:
        if done == chunk:
            raise Killed

    return on_chunk


def same_trajectory(tmp: Path, reference: Path) -> None:
    resumed, uninterrupted = metrics(tmp), metrics(reference)
    assert [m["chunk"] for m in resumed] == list(range(1, 61))
    for a, b in zip(resumed, uninterrupted, strict=True):
        assert (a["loss"], a["accuracy"], a["grad_norm"]) == (
            b["loss"],
            b["accuracy"],
            b["grad_norm"],
        )


def interrupted_run(tmp: Path) -> Path:
    """A run killed after chunk 5; its work folder."""
    with pytest.raises(Killed):
        run(tmp, on_chunk=kill_after(5))
    return tmp / "work"


def test_a_torn_metrics_line_is_dropped_on_resume(
    reference_run: Path, tmp_path: Path, caplog
) -> None:
    work = interrupted_run(tmp_path) / "metrics.jsonl"
    with open(work, "a", encoding="utf-8") as f:
        f.write('{"chunk": 6, "loss": 0.4')  # a write cut short by a kill
    with caplog.at_level(logging.INFO, logger="novic.train"):
        run(tmp_path)
    assert "dropping its torn last line 6" in caplog.text
    assert "resuming from" in caplog.text
    same_trajectory(tmp_path, reference_run)


def test_an_unreadable_checkpoint_is_moved_aside(
    reference_run: Path, tmp_path: Path, caplog
) -> None:
    ckpt = interrupted_run(tmp_path) / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # truncated
    with caplog.at_level(logging.INFO, logger="novic.train"):
        run(tmp_path)
    (aside,) = (tmp_path / "work").glob("checkpoint.pt.unreadable-*")
    assert f"{ckpt} is unreadable" in caplog.text and str(aside) in caplog.text
    assert aside.stat().st_size == len(data) // 2
    same_trajectory(tmp_path, reference_run)  # started afresh: the same run from chunk 1

    # A checkpoint that is no training state at all is moved aside too.
    aside.unlink()
    torch.save({"something": "else"}, ckpt)
    short = {**SETTINGS, "train": {**SETTINGS["train"], "epochs": 1}}
    run(tmp_path, short)
    assert len(list((tmp_path / "work").glob("checkpoint.pt.unreadable-*"))) == 1
    assert [m["chunk"] for m in metrics(tmp_path)] == list(range(1, 8))


def test_metrics_have_one_line_per_chunk_whatever_else_writes_to_work(
    reference_run: Path, tmp_path: Path
) -> None:
    """An orphaned trainer, a few chunks ahead on the same trajectory, appends its lines to
    work/metrics.jsonl while a rerun trains: the rerun's metrics file still has exactly one
    line per chunk."""
    work = tmp_path / "work" / "metrics.jsonl"
    ahead = {m["chunk"]: {**m, "device": "orphan"} for m in metrics(reference_run)}

    def orphan_writes(done: int, kill_at: int = 0) -> None:
        with open(work, "a", encoding="utf-8") as f:
            f.write(json.dumps(ahead[min(done + 3, 60)]) + "\n")
        if done == kill_at:
            raise Killed

    with pytest.raises(Killed):
        run(tmp_path, on_chunk=lambda done: orphan_writes(done, kill_at=5))
    with open(work, "a", encoding="utf-8") as f:  # and it had resumed from chunk 1 once
        f.writelines(json.dumps(ahead[c]) + "\n" for c in range(2, 10))
    run(tmp_path, on_chunk=orphan_writes)
    same_trajectory(tmp_path, reference_run)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 60


def test_the_gpu_paths_train_on_a_cpu(tmp_path: Path, monkeypatch) -> None:
    """bfloat16 autocast (train.amp, GPU-only) forced on, and the decoder through torch.compile
    (train.compile; the aot_eager backend traces the same graphs without generating code): the
    run trains, learns and saves a decoder that loads and matches the plain model's shapes."""
    monkeypatch.setattr("novic.train.use_amp", lambda amp, device: amp)
    monkeypatch.setattr("novic.train.COMPILE_BACKEND", "aot_eager")
    settings = {**SETTINGS, "train": {**SETTINGS["train"], "amp": True, "epochs": 4}}
    summary = run(tmp_path, settings, compile=True)
    lines = metrics(tmp_path)
    assert len(lines) == 30 and {m["device"] for m in lines} == {"cpu"}
    assert math.isfinite(summary["loss"]) and lines[-1]["loss"] < lines[0]["loss"] / 2
    model, _, record = load_decoder(tmp_path / "decoder.pt")
    assert record["train"]["amp"] is True
    plain = ObjectDecoder(model.cfg).state_dict()
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in plain.items()
    }  # no torch.compile wrapper prefixes in the saved weights


def test_amp_is_for_gpus_only() -> None:
    from novic.train import use_amp

    assert not use_amp(True, torch.device("cpu")) and not use_amp(False, torch.device("cuda"))
    assert use_amp(True, torch.device("cuda"))


def test_device_names_for_the_records() -> None:
    from novic.device import device_name

    assert device_name(torch.device("cpu")) == "cpu"


# --- batches prepared ahead in a thread -------------------------------------------------------


def test_batches_prepared_ahead_train_the_same_run(reference_run: Path, tmp_path: Path) -> None:
    """A run that prepares each batch on the training thread gives the same metrics and weights
    as the reference run, whose batches a thread prepares ahead."""
    run(tmp_path, prefetch_batches=0)
    same_trajectory(tmp_path, reference_run)
    one, two = (load_decoder(p / "decoder.pt")[0].state_dict() for p in (tmp_path, reference_run))
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_a_run_killed_with_batches_prepared_ahead_resumes_exactly(
    reference_run: Path, tmp_path: Path
) -> None:
    """Killed after chunk 9 with more batches prepared than a chunk holds: the checkpoint
    (after chunk 8: 32 batches, 30 per epoch) records the position after the last batch
    trained, not the last one prepared, and the resumed run is the uninterrupted one."""
    with pytest.raises(Killed):
        run(tmp_path, on_chunk=kill_after(9), prefetch_batches=6)
    assert not read_ahead_threads()
    state = torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=False)["state"]
    assert (state.chunk, state.micro, state.position) == (8, 32, Position(epoch=1, batch=2))
    run(tmp_path, prefetch_batches=2)
    same_trajectory(tmp_path, reference_run)
    one, two = (load_decoder(p / "decoder.pt")[0].state_dict() for p in (tmp_path, reference_run))
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not read_ahead_threads()


class FailingLoader(MemoryLoader):
    """Fails in the middle of epoch 1."""

    def epoch(self, epoch: int, start_batch: int = 0):
        for b, batch in enumerate(super().epoch(epoch, start_batch), start_batch):
            if (epoch, b) == (1, 7):
                raise OSError("shard unreadable")
            yield batch


def test_an_error_preparing_a_batch_is_raised_by_the_run(tmp_path: Path) -> None:
    """The loader's error stops the run with its message and traceback, and the thread ends."""
    _, loader = toy_data()
    failing = FailingLoader(loader.embedding, loader.targets, loader.weights, batch_size=16)
    with pytest.raises(OSError, match="shard unreadable") as raised:
        run(tmp_path, loader=failing, prefetch_batches=2)
    assert raised.traceback[-1].name == "epoch"  # where the loader raised it
    assert not read_ahead_threads()
    assert [m["chunk"] for m in metrics(tmp_path / "work")] == list(range(1, 10))


def test_reader_processes_and_batches_prepared_ahead(tmp_path: Path) -> None:
    """The toy data as a Parquet shard, read by one reader process per epoch, which the training
    thread forks (forked by the preparing thread while the training thread held a lock of
    torch's, the one of its generator for dropout, a reader waited on it forever): preparing
    batches ahead changes nothing."""
    _, toy = toy_data()
    table = shards.embedding_table(
        toy.embedding.numpy(), toy.targets.int().numpy(), toy.weights.numpy(), "float32"
    )
    path = tmp_path / "toy.parquet"
    shards.write_shard(path, table.schema, [table], 32)
    mix = Mix(
        "toy", "toy", {}, "", 16, "float32", 2, "", 0, [MixSource("m1", 1.0, [MixShard(path, 480)])]
    )
    settings = {**SETTINGS, "train": {**SETTINGS["train"], "epochs": 3, "loader_workers": 1}}
    for prefetch in (0, 2):
        loader = EmbeddingLoader(mix, batch_size=16, buffer_rows=64, num_workers=1)
        run(tmp_path / str(prefetch), settings, loader, prefetch_batches=prefetch)
    assert metrics(tmp_path / "0")[-1]["epoch"] > 2
    same = [(m["loss"], m["grad_norm"]) for m in metrics(tmp_path / "0")]
    assert same == [(m["loss"], m["grad_norm"]) for m in metrics(tmp_path / "2")]
    assert not read_ahead_threads()
