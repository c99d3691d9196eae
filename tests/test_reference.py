"""Readers of the reference's released artifacts (novic.reference), on small hand-made files in
the reference's formats: the caption dataset imported as a caption source, a decoder checkpoint
converted to this project's decoder file, and the object-noun dictionary read as the noun table."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from test_captions import NOUNS, vocab_table
from tiny_decoder import TINY_SPEC

from novic.captions import CAPTION_SCHEMA, filter_replies, run_sample
from novic.checkpoint import load_decoder
from novic.cli import main
from novic.decoding import NounDecoder
from novic.dictionary import META_CONTENT
from novic.embedders import TINY_CONFIG
from novic.io import read_metadata, write_parquet
from novic.reference import (
    ReferenceFormatError,
    convert_reference_checkpoint,
    read_caption_dataset,
    read_reference_nouns,
    run_import,
)
from novic.settings import FilterSettings, GenerateSettings
from novic.textdata import read_text
from novic.tokens import build_target_tokens, load_tokenizer

# --------------------------------------------------------------------------- captions

ENTRIES = [
    {
        "id": 7,
        "target_noun": "dog",
        "pretty_noun": "dog",
        "singular_captions": [
            "A {singular} runs along the beach",
            "The {singular} sleeps on a red sofa",
            "a {singular} runs along the beach",  # a duplicate, case aside
            "{singular}",  # too short for captions.filter.min_length 10
        ],
        "plural_captions": ["Two {plural} play with a ball in the park"],
        "num_singular_captions": 30,
        "num_plural_captions": 10,
    },
    {
        "target_noun": "t shirt",
        "singular_captions": ["A white {singular} hanging on a line"],
        "plural_captions": [],
    },
    {  # not in the vocabulary: skipped and counted
        "target_noun": "aardvark",
        "singular_captions": ["An {singular} digs at night"],
        "plural_captions": [],
    },
]


@pytest.fixture
def vocab(tmp_path: Path) -> Path:
    path = tmp_path / "vocab" / "ft2.parquet"
    write_parquet(vocab_table(NOUNS), path, {META_CONTENT: "abc123", "novic.artifact": "vocab"})
    return path


def write_dataset(path: Path, entries: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(entries)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_imported_captions_are_the_caption_stage_own_rows(tmp_path: Path, vocab: Path) -> None:
    source = write_dataset(tmp_path / "ref" / "captions_dataset.json.gz", ENTRIES)
    out = tmp_path / "captions"
    stats = run_import(
        vocab, source, out / "captions.parquet", out / "captions.stats.json",
        {"filter": {"min_length": 10, "max_length": 0}},
    )  # fmt: skip
    table = pq.read_table(out / "captions.parquet")
    assert table.schema.remove_metadata() == CAPTION_SCHEMA
    rows = table.to_pylist()
    assert [(r["noun_id"], r["form"], r["template"]) for r in rows] == [
        (1, "singular", "A {singular} runs along the beach"),
        (1, "singular", "The {singular} sleeps on a red sofa"),
        (1, "plural", "Two {plural} play with a ball in the park"),
        (2, "singular", "A white {singular} hanging on a line"),
    ]
    assert stats["entries_not_in_vocab"] == 1 and stats["nouns_without_captions"] == 1
    assert stats["dropped_duplicates"] == 1 and stats["dropped_length"] == 1
    assert json.loads((out / "captions.stats.json").read_text()) == stats
    meta = read_metadata(out / "captions.parquet")
    assert meta["novic.vocab_sha256"] == "abc123" and meta["novic.captions_source"] == "import"

    # the generated path gives the same rows for the same captions (as numbered replies)
    replies = []
    for entry in ENTRIES[:2]:
        noun = next(n for n in NOUNS if n.target == entry["target_noun"])
        for form in ("singular", "plural"):
            lines = [
                t.replace("{" + form + "}", noun.prompt_noun(form))
                for t in entry[f"{form}_captions"]
            ]
            content = "\n".join(f"{i + 1}. {line}" for i, line in enumerate(lines))
            replies.append(
                {"noun_id": noun.id, "seq": len(replies), "form": form, "content": content,
                 "finish_reason": "stop"}
            )  # fmt: skip
    import pyarrow as pa

    generated, _ = filter_replies(
        pa.Table.from_pylist(replies),
        NOUNS,
        GenerateSettings("{count} {noun} {number}", "s", 5, 100, 100, 2),
        FilterSettings(min_length=10, max_length=0),
    )
    key = ("noun_id", "form", "template")
    assert sorted(tuple(r[k] for k in key) for r in generated.to_pylist()) == sorted(
        tuple(r[k] for k in key) for r in rows
    )

    # and the unchanged sample stage turns them into training rows and held-out rows
    parts = [out / "samples" / "part-0000.parquet"]
    sample = {"template_multiplier": 2, "sample_multiplier": 3, "seed": 0}
    sample |= {"heldout_fraction": 0.0, "heldout_rows": 10}
    counts = run_sample(vocab, out / "captions.parquet", parts, out / "held.parquet", sample)
    text = read_text(parts)
    assert counts["rows"] == text.num_rows == 3 * (3 + 1 + 2)  # dog sing+plural, tee sing
    assert not any("{" in t for t in text.column("text").to_pylist())


def test_an_interrupted_import_leaves_no_output(
    tmp_path: Path, vocab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_dataset(tmp_path / "captions_dataset.json", ENTRIES)
    out = tmp_path / "captions"

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("novic.reference.write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        run_import(vocab, source, out / "c.parquet", out / "c.json", {"filter": {}})
    assert not (out / "c.json").exists()
    assert not [p for p in out.glob("*") if p.name != "c.parquet"]  # no temporary files
    monkeypatch.undo()
    run_import(vocab, source, out / "c.parquet", out / "c.json", {"filter": {}})  # a re-run
    assert (out / "c.json").exists() and pq.read_table(out / "c.parquet").num_rows == 4


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"dog": []}, r"expected a JSON list"),
        ([{"singular_captions": [], "plural_captions": []}], r"entry 0: key 'target_noun'"),
        ([{"target_noun": "dog", "singular_captions": []}], r"\('dog'\): key 'plural_captions'"),
        (
            [
                {
                    "target_noun": "dog",
                    "singular_captions": ["A {plural} here"],
                    "plural_captions": [],
                }
            ],
            r"singular_captions\[0\] = 'A \{plural\} here' must hold the placeholder \{singular\}",
        ),
        (
            [{"target_noun": "dog", "singular_captions": ["no noun"], "plural_captions": []}],
            r"singular_captions\[0\]",
        ),
        (
            [{"target_noun": "dog", "singular_captions": [], "plural_captions": [3]}],
            r"plural_captions\[0\] is not a string",
        ),
        (
            [ENTRIES[0], {**ENTRIES[0]}],
            r"entry 1 \('dog'\): target_noun repeats entry 0",
        ),
    ],
)
def test_bad_caption_datasets_are_named(tmp_path: Path, entries: object, message: str) -> None:
    path = write_dataset(tmp_path / "bad.json", entries)
    with pytest.raises(ReferenceFormatError, match=rf"bad.json: .*{message}"):
        read_caption_dataset(path)


def test_a_dataset_of_other_nouns_is_refused(tmp_path: Path, vocab: Path) -> None:
    source = write_dataset(tmp_path / "other.json", [ENTRIES[2]])
    with pytest.raises(ReferenceFormatError, match=r"other.json: no caption .* target_noun"):
        run_import(vocab, source, tmp_path / "c.parquet", tmp_path / "c.json", {"filter": {}})
    (tmp_path / "trunc.json").write_text('[{"target_noun": "dog", ')
    with pytest.raises(ReferenceFormatError, match=r"trunc.json: not valid JSON"):
        read_caption_dataset(tmp_path / "trunc.json")


# --------------------------------------------------------------------------- checkpoints

REF_NOUNS = ["dog", "cat", "t shirt", "ankle boot", "coffee"]
H, P, L, K, HEADS = 16, 2, 2, 8, 2


def reference_checkpoint(path: Path, vocab_quant: bool = False, **change: object) -> dict:
    """A hand-made checkpoint in the reference's layout (ovod_chunk*.model), random weights."""
    tokenizer = load_tokenizer(TINY_SPEC)
    built = build_target_tokens(tokenizer, list(range(1, len(REF_NOUNS) + 1)), REF_NOUNS)
    v, cmax = built.vocab_size, built.max_tokens
    unmap = torch.tensor([0, *built.raw_ids[1:]], dtype=torch.int64)  # entry 0: the pad id
    cmap = torch.full((49408,), -1, dtype=torch.int64)
    cmap[unmap[1:]] = torch.arange(1, v)
    cmap[0] = 0
    cmap[built.raw_ids[0]] = 0  # the end token
    g = torch.Generator().manual_seed(0)
    rows = -(-v // 64) * 64 if vocab_quant else v
    logits = torch.randn(rows, H, generator=g)
    logits[v:] = 0
    s = P + cmax - 1
    state = {
        "embed_mlp.mlp.0.weight": torch.randn(P * H, TINY_CONFIG["embed_dim"], generator=g),
        "logits_linear.weight": logits,
        "pos_embedding.embedding.weight": torch.randn(s, H, generator=g),
        "transformer.norm.weight": torch.rand(H, generator=g) + 0.5,
    }
    for i in range(L):
        pre = f"transformer.layers.{i}."
        state[pre + "self_attn.in_proj_weight"] = torch.randn(3 * H, H, generator=g) / 4
        state[pre + "self_attn.out_proj.weight"] = torch.randn(H, H, generator=g) / 4
        state[pre + "linear1.weight"] = torch.randn(K, H, generator=g) / 4
        state[pre + "linear2.weight"] = torch.randn(H, K, generator=g) / 4
        state[pre + "norm1.weight"] = torch.rand(H, generator=g) + 0.5
        state[pre + "norm2.weight"] = torch.rand(H, generator=g) + 0.5
    mask = torch.triu(torch.full((s, s), float("-inf")), diagonal=1)
    mask[:P, :P] = 0
    state["causality_mask"] = mask
    ckpt = {
        "cfg_flat": {
            "action": "train",
            "embedder_spec": "openclip:timm/ViT-B-16-SigLIP",
            "model": "PrefixedIterDecoder",
            "num_heads": HEADS,
            "num_layers": L,
            "hidden_dim": H,
            "feedfwd_scale": "1/2",
            "mlp_seq_len": P,
            "mlp_hidden_layer": "none",
            "weight_tying": True,
            "strictly_causal": False,
            "layer_norm_first": True,
            "layer_bias": False,
            "logits_bias": False,
            "layer_activation": "gelu",
            "init_rezero_mode": "none",
            "vocab_quant": vocab_quant,
            "input_dropout": 0.1,
            "layer_dropout": 0.1,
            "vocab_thres": 2,
        },
        "target_config": {
            "vocab_size": v,
            "token_dtype": torch.int64,
            "mask_dtype": torch.bool,
            "start_token_id": None,
            "end_token_id": 0,
            "pad_token_id": 0,
            "compact_ids": True,
            "compact_map": cmap,
            "compact_unmap": unmap,
            "fixed_token_length": False,
            "token_length": cmax,
            "use_masks": True,
        },
        "data_config": {"use_weights": True, "multi_target": True},
        "model_state_dict": state,
        "target_nouns": ("", *REF_NOUNS),
        "num_invalid_target_nouns": 1,
    }
    for key, value in change.items():
        ckpt[key] = value
    torch.save(ckpt, path)
    return ckpt


@pytest.mark.parametrize("vocab_quant", [False, True])
def test_converted_checkpoint_reproduces_the_parameters(tmp_path: Path, vocab_quant: bool) -> None:
    src = tmp_path / "ovod_chunk0899_20240610_105233.model"
    ckpt = reference_checkpoint(src, vocab_quant)
    dst = tmp_path / "decoder.pt"
    summary = convert_reference_checkpoint(src, dst, embedder=TINY_SPEC)
    assert summary["layers"] == L and summary["hidden"] == H and summary["prefix_tokens"] == P
    model, targets, record = load_decoder(dst)
    ref = ckpt["model_state_dict"]
    ours = model.state_dict()
    v = ckpt["target_config"]["vocab_size"]
    assert torch.equal(ours["project.weight"], ref["embed_mlp.mlp.0.weight"])
    assert torch.equal(ours["token.weight"], ref["logits_linear.weight"][:v])
    assert torch.equal(ours["position"], ref["pos_embedding.embedding.weight"])
    assert torch.equal(ours["ln.weight"], ref["transformer.norm.weight"])
    for i in range(L):
        pairs = {"qkv": "self_attn.in_proj_weight", "proj": "self_attn.out_proj.weight",
                 "ff1": "linear1.weight", "ff2": "linear2.weight", "ln1": "norm1.weight",
                 "ln2": "norm2.weight"}  # fmt: skip
        for mine, theirs in pairs.items():
            assert torch.equal(
                ours[f"blocks.{i}.{mine}.weight"], ref[f"transformer.layers.{i}.{theirs}"]
            )
    assert (
        sum(t.numel() for t in ours.values())
        == sum(
            t.numel() for k, t in ref.items() if k not in ("causality_mask", "logits_linear.weight")
        )
        + v * H
    )
    assert model.cfg.heads == HEADS and model.cfg.ff_dim == K
    assert targets.nouns[1:] == REF_NOUNS and targets.vocab_size == v
    assert record["meta"]["embedder_spec"] == TINY_SPEC
    assert record["meta"]["imported_from"]["embedder_spec"] == "openclip:timm/ViT-B-16-SigLIP"

    # the same network: our forward equals the reference's layers (nn.TransformerEncoder)
    layer = torch.nn.TransformerEncoderLayer(
        H, HEADS, K, dropout=0.0, activation="gelu", batch_first=True, norm_first=True, bias=False
    )
    enc = torch.nn.TransformerEncoder(
        layer, L, norm=torch.nn.LayerNorm(H, bias=False), enable_nested_tensor=False
    ).eval()
    enc.load_state_dict(
        {k.removeprefix("transformer."): t for k, t in ref.items() if k.startswith("transformer.")}
    )
    emb = torch.nn.functional.normalize(torch.randn(3, TINY_CONFIG["embed_dim"]), dim=-1)
    tokens = torch.as_tensor(targets.tokens[1:4, :-1])
    x = (emb @ ref["embed_mlp.mlp.0.weight"].T).view(3, P, H)
    x = torch.cat([x, ref["logits_linear.weight"][tokens]], dim=1)
    x = x + ref["pos_embedding.embedding.weight"][: x.shape[1]]
    s = x.shape[1]
    with torch.no_grad():
        y = enc(x, mask=ref["causality_mask"][:s, :s])[:, P - 1 :] @ ref["logits_linear.weight"].T
        mine = model(emb, tokens)
    torch.testing.assert_close(mine, y[..., :v], rtol=1e-4, atol=1e-4)

    # and it decodes
    decoder = NounDecoder(model, targets, "beam_k3_vnone_gp_t1_a0")
    preds = decoder(np.asarray(emb[:2]))
    assert len(preds) == 2 and all(p and p[0].noun in REF_NOUNS for p in preds)


def test_import_checkpoint_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "ref.train"
    reference_checkpoint(src)
    dst = tmp_path / "decoder.pt"
    assert (
        main(
            ["import-checkpoint", str(src), "--out", str(dst), "--embedder", json.dumps(TINY_SPEC)]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().err and load_decoder(dst)[1].nouns[1:] == REF_NOUNS
    # bad files are named with what differs
    bad = tmp_path / "bad.train"
    reference_checkpoint(bad, target_nouns=("", "dog"))
    assert (
        main(
            ["import-checkpoint", str(bad), "--out", str(dst), "--embedder", json.dumps(TINY_SPEC)]
        )
        == 2
    )
    assert "bad.train" in capsys.readouterr().err


def broken(tmp_path: Path, edit) -> Path:
    path = tmp_path / "broken.model"
    ckpt = reference_checkpoint(path)
    edit(ckpt)
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("target_config"), r"missing key\(s\) \['target_config'\]"),
        (
            lambda c: c["model_state_dict"].pop("transformer.layers.1.linear2.weight"),
            r"model_state_dict lacks 'transformer.layers.1.linear2.weight'",
        ),
        (
            lambda c: c["model_state_dict"].__setitem__(
                "transformer.layers.0.linear1.weight", torch.zeros(K, H + 1)
            ),
            r"'transformer.layers.0.linear1.weight'\] has shape \(8, 17\), expected \(8, 16\)",
        ),
        (
            lambda c: c["model_state_dict"].__setitem__(
                "transformer.layers.0.linear1.bias", torch.zeros(K)
            ),
            r"does not map: \['transformer.layers.0.linear1.bias'\]",
        ),
        (lambda c: c["cfg_flat"].__setitem__("strictly_causal", True), r"'strictly_causal'"),
        (lambda c: c["cfg_flat"].__setitem__("num_layers", 3), r"'num_layers'\] is 3 but"),
        (lambda c: c["cfg_flat"].pop("num_heads"), r"lacks 'num_heads'.*--heads"),
        (
            lambda c: c["target_config"].__setitem__("token_length", 9),
            r"pos_embedding.embedding.weight has \d+ rows",
        ),
        (
            lambda c: c.__setitem__("target_nouns", ("", "dog", "cat", "sandal")),
            r"target noun 'sandal' tokenises to id \d+, which the checkpoint's compact map",
        ),
    ],
)
def test_bad_checkpoints_are_named(tmp_path: Path, edit, message: str) -> None:
    path = broken(tmp_path, edit)
    with pytest.raises(ReferenceFormatError, match=rf"broken.model: .*{message}"):
        convert_reference_checkpoint(path, tmp_path / "out.pt", embedder=TINY_SPEC)
    assert not (tmp_path / "out.pt").exists()


def test_a_pickled_payload_is_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.model"
    torch.save({"model_state_dict": {}, "x": Payload()}, path)
    with pytest.raises(ReferenceFormatError, match=r"evil.model: the restricted unpickler"):
        convert_reference_checkpoint(path, tmp_path / "out.pt", embedder=TINY_SPEC)


# --------------------------------------------------------------------------- noun dictionary

# Entries in the format of the reference's object_nouns.json (multiplicities as released).
NOUN_ENTRIES = [
    {
        "id": 12,
        "target_noun": "ski",
        "pretty_noun": "ski",
        "singulars": ["ski"],
        "plurals": ["skis"],
        "singulars_freq": [6],
        "plurals_freq": [4],
        "hypernyms": [],
    },
    {
        "id": 3,
        "target_noun": "aardwolf",
        "pretty_noun": "aardwolf",
        "singulars": ["aardwolf"],
        "plurals": [],
        "singulars_freq": [1],
        "plurals_freq": [],
        "hypernyms": [],
    },
    {
        "id": 7,
        "target_noun": "t shirt",
        "pretty_noun": "T-shirt",
        "singulars": ["T-shirt", "tee shirt"],
        "plurals": ["T-shirts"],
        "singulars_freq": [5, 1],
        "plurals_freq": [3],
        "hypernyms": [12],
    },
]


def write_nouns(path: Path, entries: object) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        json.dump(entries, f)
    return path


@pytest.mark.parametrize("name", ["object_nouns.json", "object_nouns.json.gz"])
def test_reference_nouns_become_the_noun_table(tmp_path: Path, name: str) -> None:
    from novic.dictionary import NOUN_SCHEMA
    from novic.frequency import multiplicity

    table = read_reference_nouns(write_nouns(tmp_path / name, NOUN_ENTRIES))
    assert table.schema == NOUN_SCHEMA
    rows = table.to_pylist()
    assert [r["target_noun"] for r in rows] == ["aardwolf", "ski", "t shirt"]
    assert [r["id"] for r in rows] == [1, 2, 3]  # renumbered in target order
    shirt = rows[2]
    assert shirt["pretty_noun"] == "T-shirt" and shirt["plurals"] == ["T-shirts"]
    assert (shirt["singulars_freq"], shirt["plurals_freq"]) == ([5, 1], [3])
    assert shirt["synsets"] == [] and shirt["organic_multiplicity"] is None
    for row in rows:  # the frequency the summed multiplicity stands for
        total = sum(row["singulars_freq"]) + sum(row["plurals_freq"])
        assert multiplicity(row["frequency"]) == pytest.approx(total)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"nouns": NOUN_ENTRIES}, r"expected a JSON list of noun entries, got a dict"),
        ([], r"the noun dictionary has no entries"),
        ([NOUN_ENTRIES[0], "dog"], r"entry 1: expected an object, got str"),
        ([{**NOUN_ENTRIES[0], "target_noun": "Ski"}], r"entry 0 \('Ski'\): .* not a canonical"),
        ([{**NOUN_ENTRIES[0], "id": -1}], r"entry 0 \('ski'\): key 'id' missing or not an int"),
        ([{**NOUN_ENTRIES[0], "id": True}], r"entry 0 \('ski'\): key 'id'"),
        (
            [{k: v for k, v in NOUN_ENTRIES[0].items() if k != "plurals_freq"}],
            r"entry 0 \('ski'\): key 'plurals_freq' missing or not a list",
        ),
        (
            [{**NOUN_ENTRIES[0], "plurals_freq": [4, 1]}],
            r"entry 0 \('ski'\): 1 plurals but 2 plurals_freq",
        ),
        ([{**NOUN_ENTRIES[0], "singulars_freq": [0]}], r"singulars_freq must hold integers >= 1"),
        (
            [{**NOUN_ENTRIES[1], "singulars": [], "singulars_freq": []}],
            r"entry 0 \('aardwolf'\): neither singulars nor plurals",
        ),
        ([NOUN_ENTRIES[0], {**NOUN_ENTRIES[1], "id": 12}], r"entry 1 .*: id 12 repeats entry 0"),
        (
            [NOUN_ENTRIES[0], {**NOUN_ENTRIES[0], "id": 4}],
            r"entry 1 \('ski'\): target_noun 'ski' repeats entry 0",
        ),
        ([NOUN_ENTRIES[2]], r"entry 0 \('t shirt'\): hypernyms \[12\] are not ids of the file"),
    ],
)
def test_bad_noun_dictionaries_name_the_file_and_entry(
    tmp_path: Path, entries: object, message: str
) -> None:
    path = write_nouns(tmp_path / "nouns.json", entries)
    with pytest.raises(ReferenceFormatError, match=rf"nouns.json: .*{message}"):
        read_reference_nouns(path)


def test_unreadable_noun_dictionary_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nouns.json"
    path.write_text('[{"id": 1,')
    with pytest.raises(ReferenceFormatError, match=r"nouns.json: not valid JSON"):
        read_reference_nouns(path)
    with pytest.raises(ReferenceFormatError, match=r"gone.json: cannot read the noun dictionary"):
        read_reference_nouns(tmp_path / "gone.json")


# --------------------------------------------------------------------------- workflow


def test_an_import_llm_entry_replaces_generation_in_the_workflow(tmp_path: Path) -> None:
    """Dry run: captions of an `import` entry come from import_captions; sampling is the same."""
    from project import TEST_CONFIG, copy_project, snakemake

    workdir = copy_project(tmp_path / "repo")
    source = write_dataset(tmp_path / "captions_dataset.json", ENTRIES)
    llms = {"ref": {"backend": "import", "model": "gpt-3.5-turbo-1106", "path": str(source)}}
    override = {"captions": {"llm": "ref", "llms": llms}}
    (workdir / "import.yaml").write_text(json.dumps(override))
    folder = "results/captions/ref/ft9"
    targets = [f"{folder}/samples/heldout.parquet"]
    files = snakemake(workdir, targets, configfiles=[TEST_CONFIG, "import.yaml"], dryrun=True)
    assert f"{folder}/captions.parquet" in files and f"{folder}/captions.stats.json" in files
    assert not [f for f in files if "/replies/" in f or "/cache/" in f]  # no generation
    # an LLM entry still generates (the import rule does not claim its files)
    generated = snakemake(
        workdir, ["results/captions/gpt35/ft9/captions.parquet"], configfiles=[TEST_CONFIG],
        dryrun=True,
    )  # fmt: skip
    assert any("/gpt35/ft9/replies/" in f for f in generated)


def test_the_reference_dictionary_replaces_the_wordnet_build(tmp_path: Path) -> None:
    """Run extract_nouns and threshold_vocab on the reference's dictionary format."""
    from project import TEST_CONFIG, copy_project, noun_targets, snakemake

    from novic.dictionary import read_nouns

    workdir = copy_project(tmp_path / "repo")
    write_nouns(workdir / "object_nouns.json", NOUN_ENTRIES)
    source = {  # tests/config.yaml's one object list, no general list
        "nouns": {"source": {"kind": "reference", "path": "object_nouns.json"}, "general_lists": []}
    }
    (workdir / "reference.yaml").write_text(json.dumps(source))
    configs = [TEST_CONFIG, "reference.yaml"]
    targets = ["results/nouns/dictionary.parquet", *noun_targets((9,))]
    snakemake(workdir, targets, configfiles=configs)
    table = read_nouns(workdir / "results/nouns/dictionary.parquet")
    assert table.column("target_noun").to_pylist() == ["aardwolf", "ski", "t shirt"]
    meta = read_metadata(workdir / "results/nouns/dictionary.parquet")
    assert meta["novic.noun_source"] == "reference" and len(meta["novic.source_sha256"]) == 64
    assert read_nouns(workdir / "results/vocab/ft9.parquet").column("target_noun").to_pylist() == [
        "ski"
    ]  # 6 + 4 > 9; the T-shirt's 9 does not exceed 9
    stats = json.loads((workdir / "results/vocab/ft9.stats.json").read_text())
    assert stats["coverage"] == {
        "resources/class_names/cifar10.txt": {"classes": 10, "floored": 0.0, "organic": None}
    }
    # the WordNet settings do not re-run it; another file does
    (workdir / "lexnames.yaml").write_text(json.dumps({"nouns": {"lexnames": ["plant"]}}))
    assert snakemake(workdir, targets, configfiles=[*configs, "lexnames.yaml"], dryrun=True) == []
    write_nouns(workdir / "object_nouns.json", NOUN_ENTRIES[:2])
    assert "results/nouns/dictionary.parquet" in snakemake(
        workdir, targets, configfiles=configs, dryrun=True
    )
