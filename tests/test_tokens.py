"""Target tokenisation with the embedder's tokenizer and the compact token map."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch

from novic.tokens import TargetTokens, build_target_tokens, raw_tokens, target_tokens_tensor


@pytest.fixture(scope="module")
def tokenizer():
    return open_clip.get_tokenizer("ViT-B-32")  # CLIP BPE, shipped in the open_clip wheel


def test_raw_tokens_have_no_start_token_and_end_with_the_end_token(tokenizer) -> None:
    ids = raw_tokens(tokenizer, "hot dog")
    full = tokenizer(["hot dog"])[0].tolist()  # what the text encoder sees: <sot> ... <eot> 0...
    assert full[0] == tokenizer.sot_token_id
    assert ids == full[1 : full.index(tokenizer.eot_token_id) + 1]
    assert ids[-1] == tokenizer.eot_token_id and tokenizer.sot_token_id not in ids


def test_compact_map(tokenizer) -> None:
    nouns = ["dog", "hot dog", "red panda", "armadillo"]
    t = build_target_tokens(tokenizer, [11, 5, 7, 30], nouns)
    raws = [raw_tokens(tokenizer, n) for n in nouns]
    used = sorted({i for r in raws for i in r[:-1]})
    assert t.raw_ids == [tokenizer.eot_token_id, *used]
    assert t.vocab_size == len(used) + 1
    assert t.max_tokens == max(map(len, raws))
    assert t.nouns == ["", *nouns] and t.noun_ids == [0, 11, 5, 7, 30]
    assert not t.tokens[0].any()
    for row, raw in enumerate(raws, 1):
        compact = t.tokens[row]
        # renumbered in raw-id order, ended by 0 and padded with 0
        assert [t.raw_ids[c] for c in compact[: len(raw)]] == raw
        assert compact[len(raw) - 1] == 0 and not compact[len(raw) :].any()
        assert np.all(compact[: len(raw) - 1] > 0)
        assert t.decode(compact, tokenizer) == nouns[row - 1]
    # "dog" shares its token with "hot dog"
    assert t.tokens[1, 0] == t.tokens[2, 1]


def test_lookup_maps_dictionary_ids_to_token_rows(tokenizer) -> None:
    t = build_target_tokens(tokenizer, [11, 5, 7], ["dog", "hot dog", "red panda"])
    lookup = torch.from_numpy(t.lookup())
    table = torch.from_numpy(t.tokens)
    targets = torch.tensor([[5, 0, 0], [7, 11, 0]])
    out = target_tokens_tensor(targets, lookup, table)
    assert out.shape == (2, 3, t.max_tokens)
    assert torch.equal(out[0, 0], table[2]) and torch.equal(out[1, 1], table[1])
    assert not out[0, 1:].any()


def test_round_trip_through_a_dict(tokenizer) -> None:
    t = build_target_tokens(tokenizer, [3, 4], ["dog", "cat"])
    back = TargetTokens.from_dict(t.to_dict())
    assert back.nouns == t.nouns and back.raw_ids == t.raw_ids
    assert np.array_equal(back.tokens, t.tokens)


def test_bad_inputs(tokenizer) -> None:
    with pytest.raises(ValueError, match="unique"):
        build_target_tokens(tokenizer, [1, 1], ["dog", "cat"])
    with pytest.raises(ValueError, match=">= 1"):
        build_target_tokens(tokenizer, [0], ["dog"])
    with pytest.raises(ValueError, match="nothing"):
        build_target_tokens(tokenizer, [1], [""])
    with pytest.raises(TypeError, match="unsupported tokenizer"):
        raw_tokens(object(), "dog")


class FakeSentencePiece:
    """Stands in for a Hugging Face T5 tokenizer (SigLIP's, not obtainable offline)."""

    eos_token_id = 1

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [100 + len(word) for word in text.split()]
        return {"input_ids": ids + ([1] if add_special_tokens else [])}


class FakeHFWrapper:
    """Shape of open_clip's HFTokenizer: `.tokenizer` and `.clean_fn`."""

    tokenizer = FakeSentencePiece()

    @staticmethod
    def clean_fn(text: str) -> str:
        return " ".join(text.lower().split())


def test_hugging_face_tokenizers_use_their_eos_token() -> None:
    assert raw_tokens(FakeHFWrapper(), "Red  Panda") == [103, 105, 1]
    t = build_target_tokens(FakeHFWrapper(), [1, 2], ["red panda", "cat"])
    assert t.raw_ids == [1, 103, 105]
    assert t.tokens.tolist() == [[0, 0, 0], [1, 2, 0], [1, 0, 0]]
