"""LLM annotation of free predictions (novic.annotate) against a real local OpenAI-compatible
server (tests/llm_fault_server.py): grades parsed or retried, failures recorded, nothing sent
twice (also after a kill), people's annotations first, and who annotated what share."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_fault_server import FaultServer

from novic.annotate import (
    RETRY_PROMPT,
    parse_grade,
    pending_pairs,
    reference_labels,
    run_annotate,
    run_score,
)
from novic.llm import BudgetExceeded
from novic.scoring import (
    AnnotationError,
    load_annotations,
    load_llm_annotations,
    merge_annotations,
    score_predictions,
)
from novic.settings import AnnotateSettings

ROOT = Path(__file__).resolve().parent.parent
HUMAN = ROOT / "resources/sample_images/annotations.json"
SPECIFICITY = ROOT / "resources/sample_images/specificity.json"
# Free predictions of the bundled photos: some nouns people judged, some nobody did.
PREDICTIONS = {
    "astronaut.jpg": ["astronaut", "cosmonaut", "helmet", "flag", "moon"],
    "cat.jpg": ["tabby", "kitty", "whisker", "tiger", "sofa"],
    "coffee.jpg": ["espresso", "mocha", "saucer", "tea", "cake"],
    "rocket.jpg": ["rocket", "booster", "smoke", "sky", "airplane"],
    "grace_hopper.jpg": ["officer", "commodore", "medal", "man", "tie"],
}
UNJUDGED = {"cosmonaut", "moon", "kitty", "sofa", "mocha", "cake", "booster", "commodore", "tie"}
# What the fake grader says about each unjudged noun
GRADES = {
    "cosmonaut": "correct_primary",
    "moon": "incorrect",
    "kitty": "Correct primary.",
    "sofa": "close secondary",
    "mocha": "close_primary",
    "cake": "incorrect",
    "booster": "correct-secondary",
    "commodore": "close_primary",
    "tie": "correct_secondary",
}


def predictions_file(path: Path, whole_vocab: bool = False) -> Path:
    samples = [
        {
            "id": image,
            "label": None,
            "predictions": [
                {"noun": n, "prob": 0.1, "score": 0.0, "kind": "target"} for n in nouns
            ],
            **({"whole_vocab": ["moon", "mug"]} if whole_vocab else {}),
        }
        for image, nouns in PREDICTIONS.items()
    ]
    doc = {"run": "r1", "benchmark": "sample_photos", "samples": samples, "errors": []}
    path.write_text(json.dumps(doc))
    return path


def grader(prompt: str, number: int) -> str:
    """The grade GRADES names for the quoted noun; a retry is answered `incorrect`."""
    if prompt == RETRY_PROMPT:
        return "incorrect"
    noun = re.search(r'named the image "([^"]+)"', prompt)
    return GRADES.get(noun.group(1) if noun else "", "I cannot tell.")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    s = FaultServer().start()
    s.reply = grader
    yield s
    s.stop()


def params(server: FaultServer, **annotate) -> dict:
    return {
        "name": "fake",
        "llm": {
            "backend": "openai-compatible",
            "model": "fake-grader",
            "base_url": server.base_url,
        },
        "annotate": {"whole_vocab": False, **annotate},
        "benchmark": "sample_photos",
    }


REQUESTS = {"concurrency": 2, "timeout": 5, "max_retries": 2, "backoff_base": 0.01}


# --- replies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "grade"),
    [
        ("correct_primary", "correct_primary"),
        ("Close primary.", "close_primary"),
        ("Grade: correct-secondary", "correct_secondary"),
        ("  INCORRECT\n", "incorrect"),
        ("incorrect_primary", "incorrect"),  # not correct_primary
        ("close_secondary (the fur)", "close_secondary"),
        ("correct", None),  # primary or secondary?
        ("correct_primary or close_primary", None),  # two grades
        ("", None),
        ("I am sorry, I cannot see images.", None),
    ],
)
def test_parse_grade(reply: str, grade: str | None) -> None:
    assert parse_grade(reply) == grade


def test_pairs_skip_what_people_annotated_and_images_without_labels(tmp_path: Path) -> None:
    human = load_annotations(HUMAN)
    doc = json.loads(predictions_file(tmp_path / "p.json", whole_vocab=True).read_text())
    doc["samples"].append({"id": "unknown.jpg", "label": None, "predictions": [{"noun": "dog"}]})
    settings = AnnotateSettings.from_config({"top_k": 5, "whole_vocab": True})
    pairs, counts = pending_pairs(doc, human, settings)
    assert {p.noun for p in pairs} == UNJUDGED | {"mug"}  # moon once per image, mug from CLIP
    # people judged 16 of the 25 free nouns, and "mug" (close_primary) of coffee.jpg
    assert counts["no_reference"] == 1 and counts["human"] == 25 - len(UNJUDGED) + 1
    cat = next(p for p in pairs if p.image == "cat.jpg")
    assert cat.primary == ("cat", "domestic cat", "kitten", "tabby", "tabby cat")
    assert cat.secondary == ("whisker",)
    # a class label leads the primary labels
    assert reference_labels("Ankle boot", {})[0] == ("ankle boot",)
    top1 = AnnotateSettings.from_config({"top_k": 1, "whole_vocab": False})
    assert pending_pairs(doc, human, top1)[0] == []  # every top-1 noun is judged by people


def test_bad_prompt_placeholder_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"prompt: may use only \{primary\}"):
        AnnotateSettings.from_config({"prompt": "grade {label}"})


# --- the stage against a real local server ------------------------------------------------------


def test_annotate_grades_retries_records_failures_and_never_sends_twice(
    tmp_path: Path, server: FaultServer
) -> None:
    preds = predictions_file(tmp_path / "p.json")
    GRADES["commodore"] = "Maybe correct or close."  # unparsable, then the retry says incorrect
    GRADES["tie"] = "correct_primary, correct_secondary"  # ambiguous; with attempts 1: failed
    try:
        server.faults.extend(["500", "malformed"])  # retried by the client, never fatal
        out = tmp_path / "fake/sample_photos/r1.json"
        cache = tmp_path / "fake/cache"
        doc = run_annotate(preds, HUMAN, out, cache, params(server), REQUESTS)
    finally:
        GRADES["commodore"], GRADES["tie"] = "close_primary", "correct_secondary"
    rows = {r["noun"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == UNJUDGED
    assert rows["kitty"]["category"] == "correct_primary" and rows["kitty"]["by"] == "fake-grader"
    assert rows["booster"]["category"] == "correct_secondary"
    assert rows["commodore"]["category"] == "incorrect" and len(rows["commodore"]["replies"]) == 2
    # attempts defaults to 2: the retry of the ambiguous reply is answered "incorrect"
    assert rows["tie"]["category"] == "incorrect"
    assert doc["counts"]["failed"] == 0 and doc["usage"]["retries"] == 2
    sent = len(server.requests)
    assert len(set(server.answered)) == len(server.answered) == len(UNJUDGED) + 2
    # a re-run is answered by the cache: nothing sent, the same rows
    again = run_annotate(preds, HUMAN, out, cache, params(server), REQUESTS)
    assert len(server.requests) == sent and again["rows"] == doc["rows"]
    assert again["usage"]["cached"] == len(UNJUDGED) + 2
    # with one attempt the pairs whose first (cached) reply named no single grade are recorded
    # as failed; nothing is sent, and a failed pair does not crash the stage
    one = run_annotate(preds, HUMAN, out, cache, params(server, attempts=1), REQUESTS)
    failed = [r for r in one["rows"] if r["category"] is None]
    assert [r["noun"] for r in failed] == ["commodore", "tie"] and "failed" in failed[0]
    assert len(server.requests) == sent and one["counts"]["failed"] == 2
    assert "grace_hopper.jpg" not in load_llm_annotations(out)  # both missing
    assert load_llm_annotations(out)["cat.jpg"] == {
        "kitty": ("correct_primary", "fake-grader"),
        "sofa": ("close_secondary", "fake-grader"),
    }


def test_no_api_key_reaches_an_output(
    tmp_path: Path, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GRADER_KEY", "sk-secret-0123456789")
    p = params(server)
    p["llm"]["api_key_env"] = "FAKE_GRADER_KEY"
    out = tmp_path / "fake/sample_photos/r1.json"
    run_annotate(predictions_file(tmp_path / "p.json"), HUMAN, out, tmp_path / "c", p, REQUESTS)
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-secret-0123456789"
    files = [out, *sorted((tmp_path / "c").glob("*.jsonl"))]
    assert not any("sk-secret" in f.read_text() for f in files)
    monkeypatch.delenv("FAKE_GRADER_KEY")
    with pytest.raises(RuntimeError, match="FAKE_GRADER_KEY is not set"):
        run_annotate(tmp_path / "p.json", HUMAN, out, tmp_path / "c", p, REQUESTS)


def test_a_cap_stops_the_stage_and_a_rerun_with_a_higher_cap_resumes(
    tmp_path: Path, server: FaultServer
) -> None:
    preds = predictions_file(tmp_path / "p.json")
    out, cache = tmp_path / "fake/sample_photos/r1.json", tmp_path / "fake/cache"
    capped = REQUESTS | {"max_requests": 4, "concurrency": 1}
    with pytest.raises(BudgetExceeded, match=r"4 requests sent for the annotations of this LLM"):
        run_annotate(preds, HUMAN, out, cache, params(server), capped)
    assert not out.exists() and len(server.requests) == 4
    doc = run_annotate(preds, HUMAN, out, cache, params(server), capped | {"max_requests": 100})
    keys = server.keys()
    assert len(keys) == len(set(keys)) == len(UNJUDGED)
    assert doc["usage"]["cached"] == 4 and doc["usage"]["total_requests"] == len(UNJUDGED)


CHILD = """
import json, sys
from novic.annotate import run_annotate
args = json.loads(sys.argv[1])
run_annotate(args["preds"], args["human"], args["out"], args["cache"], args["params"],
             args["requests"])
"""


def test_a_killed_run_resumes_without_sending_a_finished_pair_again(
    tmp_path: Path, server: FaultServer
) -> None:
    preds = predictions_file(tmp_path / "p.json")
    out, cache = tmp_path / "fake/sample_photos/r1.json", tmp_path / "fake/cache"
    server.hang_after = 4  # the 5th request on never gets a reply
    args = {"preds": str(preds), "human": str(HUMAN), "out": str(out), "cache": str(cache),
            "params": params(server), "requests": REQUESTS | {"concurrency": 1}}  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(server.requests) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.answered) == 4
        time.sleep(0.3)  # the 4 replies are cached as they arrive
    finally:
        child.kill()
        child.wait()
    assert not out.exists()
    first = list(server.answered)
    server.hang_after = None
    doc = run_annotate(preds, HUMAN, out, cache, params(server), REQUESTS)
    # the finished pairs come from the cache; only the rest (and the hung one) are sent
    assert not set(first) & set(server.answered[4:])
    assert len(set(server.answered)) == len(server.answered) == len(UNJUDGED)
    assert doc["usage"]["cached"] == 4 and len(doc["rows"]) == len(UNJUDGED)


# --- scoring with people's and the LLM's annotations -------------------------------------------


def test_people_win_and_shares_say_who_annotated(tmp_path: Path) -> None:
    human = {"a.jpg": {"dog": "correct_primary"}, "b.jpg": {"cat": "incorrect"}}
    llm = {
        "a.jpg": {"dog": ("incorrect", "gpt-4o"), "puppy": ("close_primary", "gpt-4o")},
        "b.jpg": {"kitten": ("correct_primary", "gpt-4o")},
    }
    judged, by = merge_annotations(human, llm)
    assert judged["a.jpg"] == {"dog": "correct_primary", "puppy": "close_primary"}
    assert by["a.jpg"] == {"dog": "human", "puppy": "gpt-4o"}
    preds = {"a.jpg": ["puppy", "dog", "bone"], "b.jpg": ["kitten", "cat"]}
    top1 = score_predictions(preds, judged, None, 1, by).to_dict()
    assert top1["score"] == pytest.approx((0.5 + 1.0) / 2)
    assert top1["annotated_by"] == {"human": 0, "llm": 2, "missing": 0}
    top5 = score_predictions(preds, judged, None, 5, by).to_dict()
    assert top5["annotated_by"] == {"human": 2, "llm": 2, "missing": 1}
    assert top5["shares"] == {"human": 0.4, "llm": 0.4, "missing": 0.2}
    # without the LLM the same predictions score less and more are missing
    alone = score_predictions(preds, human, None, 1).to_dict()
    assert alone["score"] == 0.0 and alone["shares"]["missing"] == 1.0


def test_score_stage_reads_both_files_people_first(tmp_path: Path) -> None:
    preds = predictions_file(tmp_path / "p.json", whole_vocab=True)
    rows = [
        {"image": "cat.jpg", "noun": "kitty", "category": "correct_primary", "by": "m"},
        {"image": "astronaut.jpg", "noun": "astronaut", "category": "incorrect", "by": "m"},
        {"image": "astronaut.jpg", "noun": "moon", "category": None, "by": "m", "failed": "x"},
    ]
    llm = tmp_path / "llm.json"
    llm.write_text(json.dumps({"model": "m", "rows": rows}))
    out = run_score(preds, HUMAN, [llm], tmp_path / "s.json", SPECIFICITY)
    top1 = out["open_vocab"]["top1"]
    assert top1["score"] == 1.0  # astronaut stays correct_primary (people's word)
    top5 = out["open_vocab"]["top5"]
    assert top5["annotated_by"] == {"human": 16, "llm": 1, "missing": 8}
    assert "whole_vocab" in out and json.loads((tmp_path / "s.json").read_text()) == out
    assert out["annotators"]["llm"] == ["m"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "expected an object"),
        ({"rows": {}}, "key 'rows': expected a list"),
        ({"rows": [{"image": "a", "noun": "b"}]}, r"rows\[0\]\.by: expected a non-empty string"),
        (
            {"rows": [{"image": "a", "noun": "b", "by": "m", "category": "right"}]},
            r"rows\[0\]\.category: 'right' is not one of",
        ),
    ],
)
def test_bad_llm_annotation_files_name_the_file_and_key(
    tmp_path: Path, doc: object, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(AnnotationError, match=message) as info:
        load_llm_annotations(path)
    assert str(path) in str(info.value)


def test_report_table_shows_the_merged_score_and_who_annotated() -> None:
    from novic.report import metrics_rows, with_llm_scores

    evals = [
        {"benchmark": "photos", "open_vocab": {"top1": {"score": 0.2}}, "whole_vocab": {"top1": 0}},
        {"benchmark": "fashion_mnist", "free": {"top1": 0.5}},
    ]
    block = {"score": 0.6, "shares": {"human": 0.5, "llm": 0.25, "missing": 0.25}}
    scored = {
        "benchmark": "photos",
        "open_vocab": {"top1": block},
        "whole_vocab": {"open_vocab": {"top1": {"score": 0.4}}},
    }
    merged = with_llm_scores(evals, [scored])
    assert merged[0]["whole_vocab"] == {"top1": 0, "open_vocab": {"top1": {"score": 0.4}}}
    assert merged[1] == evals[1] and evals[0]["open_vocab"]["top1"]["score"] == 0.2
    row = metrics_rows(merged, None)[0]
    assert row["open-vocab score"] == "60.00" and row["whole-vocab open-vocab score"] == "40.00"
    assert row["open-vocab annotated by people"] == "50.00"
    assert row["open-vocab annotated by LLM"] == row["open-vocab not annotated"] == "25.00"
