"""novic.captions: parsing, filtering, the per-noun call loop, sampling, and the stage functions."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from llm_fault_server import FaultServer

from novic.captions import (
    Noun,
    NounCaptions,
    NounMatcher,
    filter_replies,
    generate_noun,
    heldout_mask,
    heldout_rows,
    load_nouns,
    normalise,
    parse_numbered,
    replies_table,
    reply_cache_dir,
    run_filter,
    run_generate,
    run_sample,
    sample_rows,
    select_nouns,
)
from novic.dictionary import META_CONTENT, noun_row, noun_table
from novic.io import read_metadata, write_parquet
from novic.llm import BudgetExceeded, Reply
from novic.settings import FilterSettings, GenerateSettings
from novic.textdata import read_text, text_schema

PROMPT = 'Generate a list of {count} image captions each containing "{noun}" ({number}).'
GEN = GenerateSettings(PROMPT, "You are a helpful AI assistant.", 5, 2, 3, 2)
DOG = Noun(1, "dog", "dog", ("dog", "hound"), ("dogs",), (2, 1), (1,), 5.0)
TEE = Noun(2, "t shirt", "T-shirt", ("T-shirt", "tee shirt"), ("T-shirts",), (1, 1), (1,), 3.0)
SHEEP = Noun(3, "sheep", "sheep", ("sheep",), ("sheep",), (1,), (1,), 1.0)
NOUNS = [DOG, TEE, SHEEP]


def vocab_table(nouns: list[Noun]) -> pa.Table:
    return noun_table(
        noun_row(n.id, n.singulars, n.plurals, singulars_freq=n.singulars_freq,
                 plurals_freq=n.plurals_freq, frequency=n.frequency, target=n.target,
                 pretty=n.pretty)
        for n in nouns
    )  # fmt: skip


@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "vocab" / "ft2.parquet"
    write_parquet(vocab_table(NOUNS), path, {META_CONTENT: "abc123", "novic.artifact": "vocab"})
    return path


def test_parse_numbered_and_normalise():
    text = 'Here you go:\n1. A dog.\n 2 . "A dog\'s bone!"\n3) no\n4.5 million dogs\n10. Last one'
    assert parse_numbered(text) == ["A dog.", '"A dog\'s bone!"', "Last one"]
    assert parse_numbered(text, truncated=True) == ["A dog.", '"A dog\'s bone!"']
    assert normalise('"A dog\'s bone!"') == "A dog's bone"
    assert normalise("  **Caf\u00e9   with a  dog.**  ") == "Cafe with a dog"
    assert normalise("\u201cA dog\u201d") == "A dog"


def test_matcher_word_boundaries_variants_and_case():
    m = NounMatcher(TEE)
    assert m.forms("A red T-shirt on a chair") == ["singular"]
    assert m.forms("two tee-shirt designs") == ["singular"]  # space and hyphen interchangeable
    assert m.forms("A pile of t shirts") == ["plural"]
    assert m.template("A T-SHIRT and another tee shirt", "singular") == (
        "A {singular} and another {singular}"
    )
    d = NounMatcher(DOG)
    assert d.forms("A hotdog stand") == []
    assert d.forms("The dog's bowl") == ["singular"]
    assert d.template("The dog's bowl", "singular") == "The {singular}'s bowl"
    assert d.forms("Two dogs and a hound") == ["singular", "plural"]
    assert d.forms("dogsled") == []


def test_noun_captions_rules():
    state = NounCaptions(DOG, {"singular": 4, "plural": 1}, FilterSettings(min_length=10))
    reply = "\n".join(
        [
            "1. A dog on a sofa.",
            "2. A dog on a sofa",
            "3. Dog.",
            "4. A cat on a mat.",
            "5. Two dogs in the snow.",
            "6. A {weird} dog caption",
            "7. Three dogs and one hound",
        ]
    )
    added = state.add_reply(reply, truncated=False, prompted="singular", seq=0)
    assert added == {"singular": 2, "plural": 1}
    assert [(c.form, c.template) for c in state.captions] == [
        ("singular", "A {singular} on a sofa"),  # the duplicate (2.) dropped, 3. too short
        ("plural", "Two {plural} in the snow"),
        ("singular", "Three dogs and one {singular}"),  # both forms: plural's quota is met
    ]
    assert state.lines == 7 and state.need("singular") == 2 and state.need("plural") == 0


def test_same_word_for_both_forms_goes_to_neediest():
    state = NounCaptions(SHEEP, {"singular": 1, "plural": 3})
    state.add_reply("1. A sheep on a hill\n2. A sheep by a fence", False, "singular", 0)
    assert [c.form for c in state.captions] == ["plural", "plural"]


def test_quota_and_messages():
    gen = GenerateSettings(PROMPT, "sys", 10, 10, 10, 4)
    big = Noun(9, "x", "x", ("x",), ("xs", "xes"), (30,), (2, 5))
    assert gen.quota(big, "singular") == 100 and gen.quota(big, "plural") == 70
    assert gen.quota(Noun(8, "y", "y", ("y",), (), (1,), ()), "plural") == 0
    msgs = gen.messages(big, "plural")
    assert msgs[0] == {"role": "system", "content": "sys"}
    assert msgs[1]["content"] == (
        'Generate a list of 10 image captions each containing "xes" (plural).'
    )
    with pytest.raises(ValueError, match=r"captions\.generate\.prompt: may use only"):
        GenerateSettings.from_config({"prompt": "{count} {nouns}", "system_prompt": "s"})
    with pytest.raises(ValueError, match=r"must contain \{noun\}"):
        GenerateSettings.from_config({"prompt": "{count} things", "system_prompt": "s"})


class ScriptedClient:
    """Answers every request with the next scripted reply content."""

    def __init__(self, contents):
        self.contents = list(contents)
        self.calls = []

    async def complete(self, messages, call, meta, bucket):
        self.calls.append((meta["form"], call))
        if not self.contents:
            return None
        content = self.contents.pop(0)
        return Reply(f"k{len(self.calls)}", content, "stop", 10, 20)


def test_generate_noun_stops_at_quota_and_after_unproductive_calls():
    # quotas: singular min(3, 3) * 2 = 6, plural min(1, 3) * 2 = 2; the neediest form goes first
    client = ScriptedClient(
        [
            "1. A dog here\n2. A dog there\n3. A dog everywhere",  # singular: 3 of 6
            "nothing useful",  # singular (3 to go) again: unproductive 1
            "1. A dog here",  # a duplicate: unproductive 2, singular gives up
            "1. Dogs on a walk\n2. Many dogs in a park",  # plural: 2 of 2, done
        ]
    )
    rows = asyncio.run(generate_noun(DOG, GEN, client))
    assert client.calls == [("singular", 0), ("singular", 1), ("singular", 2), ("plural", 0)]
    assert [r["seq"] for r in rows] == [0, 1, 2, 3]
    assert [r["call"] for r in rows] == [0, 1, 2, 0]
    # the filter stage replays the same rows to the same captions
    captions, stats = filter_replies(replies_table(rows), NOUNS, GEN, FilterSettings())
    assert captions.num_rows == 5 and stats["numbered_lines"] == 6
    assert Counter(captions.column("form").to_pylist()) == {"singular": 3, "plural": 2}
    # a stricter filter drops captions without asking for more
    captions, _ = filter_replies(replies_table(rows), NOUNS, GEN, FilterSettings(min_length=12))
    assert captions.num_rows == 3


def test_sample_rows_follow_the_reference_rules():
    templates = [f"photo {i} of a {{singular}}" for i in range(50)] + ["many {plural}"]
    captions = pa.table(
        {
            "noun_id": [1] * 51,
            "form": ["singular"] * 50 + ["plural"],
            "template": templates,
            "seq": [0] * 51,
        }
    )
    texts, ids = sample_rows(captions, NOUNS, template_multiplier=2, sample_multiplier=3, seed=0)
    # dog: singular variants freq (2, 1) -> 6 + 3 rows; plural freq 1 -> 3 rows; others none
    assert len(texts) == 12 and set(ids.tolist()) == {1}
    singular = texts[:9]
    assert sum(t.endswith(" dog") for t in singular) == 6
    assert sum(t.endswith(" hound") for t in singular) == 3
    assert len({t.rsplit(" of a ", 1)[0] for t in singular}) == 6  # 2 * sum(freqs) templates
    assert texts[9:] == ["many dogs"] * 3
    again, _ = sample_rows(captions, NOUNS, 2, 3, seed=0)
    other, _ = sample_rows(captions, NOUNS, 2, 3, seed=1)
    assert again == texts and other != texts
    alone, _ = sample_rows(captions, [DOG], 2, 3, seed=0)
    assert alone == texts  # a noun's rows do not depend on the other nouns
    with pytest.raises(ValueError, match=r"sample_multiplier .* must be >= template_multiplier"):
        sample_rows(captions, NOUNS, 5, 3, seed=0)


def test_heldout_captions_are_never_sampled_for_training():
    templates = [f"photo {i} of a {{singular}}" for i in range(200)] + ["many {plural}"]
    captions = pa.table(
        {
            "noun_id": [1] * 201 + [3],
            "form": ["singular"] * 200 + ["plural", "singular"],
            "template": [*templates, "one {singular}"],
        }
    )
    held = heldout_mask(captions, 0.25, seed=0)
    assert 30 < held[:200].sum() < 70  # about a quarter of the dog's singular templates
    assert not held[200] and not held[201]  # a form's only template stays for training
    assert (heldout_mask(captions, 0.25, seed=0) == held).all()
    assert (heldout_mask(captions.slice(0, 200), 0.25, seed=0) == held[:200]).all()  # stable
    assert heldout_mask(captions, 1.0, seed=0).sum() == 199  # all but one of the 200
    train = captions.filter(pa.array(~held))
    texts, _ = sample_rows(train, NOUNS, 100, 100, seed=0)
    held_texts, ids = heldout_rows(captions.filter(pa.array(held)), NOUNS, 1000, seed=0)
    assert len(held_texts) == held.sum() and set(ids.tolist()) == {1}
    assert all(t.endswith((" dog", " hound")) for t in held_texts)
    stems = {t.rsplit(" of a ", 1)[0] for t in texts}
    assert stems and not stems & {t.rsplit(" of a ", 1)[0] for t in held_texts}
    few, _ = heldout_rows(captions.filter(pa.array(held)), NOUNS, 5, seed=0)
    assert len(few) == 5 and set(few) <= set(held_texts)


def test_load_and_select_nouns(vocab):
    nouns = load_nouns(vocab)
    assert nouns == NOUNS
    assert [n.id for n in select_nouns(nouns, 0, 1, 2)] == [1, 3]
    assert [n.id for n in select_nouns(nouns, 2, 0, 1)] == [1, 2]  # the 2 most frequent


def test_select_nouns_adds_the_nouns_a_class_list_names(tmp_path) -> None:
    """Beyond the most frequent, a noun whose variant names a class of a class list (through
    any synonym, canonicalised) is captioned too; a combining label names nothing itself."""
    classes = tmp_path / "classes.txt"
    classes.write_text("# a list\nSheep\nbaa or lamb\nT-Shirts, top\n")
    assert [n.id for n in select_nouns(NOUNS, 1, 0, 1, [classes])] == [1, 2, 3]
    classes.write_text("baa or sheep\n")
    assert [n.id for n in select_nouns(NOUNS, 1, 0, 1, [classes])] == [1]
    assert [n.id for n in select_nouns(NOUNS, 0, 0, 1, [classes])] == [1, 2, 3]  # all anyway


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """The fault-injecting OpenAI-compatible server on loopback."""
    s = FaultServer().start()
    yield s
    s.stop()


def fake_params(server: FaultServer, shards: int, llm: dict | None = None, **generate) -> dict:
    """Stage params of an openai-compatible LLM "fake" served by `server`."""
    return {
        "name": "fake",
        "llm": {
            "backend": "openai-compatible",
            "model": "fake-model",
            "base_url": server.base_url,
            **(llm or {}),
        },
        "generate": {"prompt": PROMPT, "system_prompt": "sys", **generate},
        "shards": shards,
    }


def test_stages_end_to_end_with_fault_server(tmp_path, vocab, server):
    """generate (2 shards, faults injected) -> filter -> sample, then a re-run sends nothing."""
    server.faults.extend(["429", "nolist", "empty", "truncated", "500"])
    params = fake_params(
        server, 2, {"seed": 0}, captions_per_call=5, quota_per_freq=2, quota_freq_cap=3,
        max_unproductive_calls=2,
    )  # fmt: skip
    requests = {"concurrency": 2, "timeout": 5, "max_retries": 3, "backoff_base": 0.01}
    out = tmp_path / "captions"
    paths = []
    for shard in range(2):
        replies = out / "replies" / f"shard-{shard:03d}.parquet"
        stats = out / "replies" / f"shard-{shard:03d}.stats.json"
        run_generate(vocab, replies, stats, reply_cache_dir(replies), params, requests, shard)
        paths.append((replies, stats))
    sent = len(server.requests)
    assert sent >= 3 + 2  # at least one call per form, plus the injected 429 and 500
    # a re-run is served from the cache
    for shard, (replies, stats) in enumerate(paths):
        run_generate(vocab, replies, stats, reply_cache_dir(replies), params, requests, shard)
    assert len(server.requests) == sent
    usage = json.loads(paths[0][1].read_text())["usage"]
    assert usage["answered"] == 0 and usage["cached"] > 0
    assert read_metadata(paths[0][0])["novic.vocab_sha256"] == "abc123"
    stats = run_filter(
        vocab,
        [p for p, _ in paths],
        [s for _, s in paths],
        out / "captions.parquet",
        out / "captions.stats.json",
        {"generate": params["generate"], "filter": {"min_length": 10}},
    )
    assert stats["captions"] > 0 and stats["usage"]["total_requests"] == stats["replies"]
    captions = pq.read_table(out / "captions.parquet")
    assert set(captions.column("noun_id").to_pylist()) == {1, 2, 3}
    assert all(
        "{singular}" in t or "{plural}" in t for t in captions.column("template").to_pylist()
    )
    parts = [out / "samples" / f"part-{k:04d}.parquet" for k in range(2)]
    counts = run_sample(
        vocab,
        out / "captions.parquet",
        parts,
        out / "samples" / "heldout.parquet",
        {
            "template_multiplier": 2,
            "sample_multiplier": 3,
            "seed": 0,
            "heldout_fraction": 0.0,
            "heldout_rows": 10,
        },
    )
    rows = counts["rows"]
    assert counts["heldout_rows"] == read_text([out / "samples" / "heldout.parquet"]).num_rows == 0
    table = read_text(parts)
    # 3 rows per unit of variant frequency, for each noun form that has captions
    ids, forms = captions.column("noun_id").to_pylist(), captions.column("form").to_pylist()
    have = set(zip(ids, forms, strict=True))
    assert stats["nouns_below_quota"] >= 1  # the injected faults cost one form its captions
    expected = sum(
        3 * sum(n.freqs(f)) for n in NOUNS for f in ("singular", "plural") if (n.id, f) in have
    )
    assert table.num_rows == rows == expected
    assert pq.read_schema(parts[1]).remove_metadata() == text_schema()
    assert abs(pq.read_metadata(parts[0]).num_rows - pq.read_metadata(parts[1]).num_rows) <= 1
    assert table.column("weights").to_pylist()[0] == [1.0, 0.0, 0.0]
    assert not any("{" in t for t in table.column("text").to_pylist())


def test_generate_stops_at_cap_and_resumes(tmp_path, vocab, server):
    params = fake_params(server, 1, captions_per_call=2, quota_per_freq=3, quota_freq_cap=3)
    replies = tmp_path / "fake" / "ft2" / "replies" / "shard-000.parquet"
    stats = tmp_path / "replies" / "shard-000.stats.json"
    args = (vocab, replies, stats, reply_cache_dir(replies), params)
    with pytest.raises(BudgetExceeded, match="request cap reached: 3 requests"):
        run_generate(*args, {"max_requests": 3, "concurrency": 1}, 0)
    assert not replies.exists() and len(server.requests) == 3
    run_generate(*args, {"max_requests": 100, "concurrency": 3}, 0)
    keys = server.keys()
    assert len(keys) == len(set(keys)) > 3
    assert pq.read_table(replies).num_rows == len(keys)
