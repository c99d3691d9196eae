"""LLM annotation of free predictions, and the open-vocabulary score over every prediction.

The open-vocabulary points (novic.scoring) need a judgement of every predicted noun; people
annotate some in the benchmark's annotation file, and an LLM grades the rest (the paper used
GPT-4o). Rule annotate_predictions (run_annotate) takes one run's predictions JSON on one
benchmark and asks the LLM about each (reference labels, predicted noun) pair that people have
not annotated, with the caption stage's backends, reply cache, retries and caps (novic.llm):

- reference labels: the image's class name (labelled benchmarks) and the nouns people marked
  correct_primary ({primary}) and correct_secondary ({secondary}) for it. The LLM is text-only:
  it sees these labels and the noun, never the image. An image without any such label cannot
  be graded and its predictions stay missing.
- grades: exactly the scoring's categories (correct_primary, correct_secondary, close_primary,
  close_secondary, incorrect). A reply counts when it names exactly one of them (parse_grade);
  otherwise the question is asked again with the bad reply quoted (eval.annotate.attempts in
  all), and a pair that never gets a grade is recorded as failed (category null: missing).
- caching: every request and reply goes to the LLM's reply cache
  (results/annotations/{llm}/cache/, not a rule output, so it survives failed and killed jobs),
  keyed by a hash of the request; a pair is thus sent once for every run and benchmark, and a
  killed job's re-run sends only what was never answered.

Rule score_open_vocab (run_score) then scores the predictions with people's annotations and
the LLM's (a person's annotation always wins) and reports who annotated the scored predictions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novic.forms import canonical
from novic.io import write_json
from novic.llm import (
    CACHE_BUCKETS,
    LLMClient,
    Reply,
    ReplyCache,
    api_key_from_env,
    run_requests,
)
from novic.scoring import (
    POINTS,
    AnnotationError,
    Sample,
    load_annotations,
    load_llm_annotations,
    load_specificity,
    merge_annotations,
    score_predictions,
)
from novic.settings import AnnotateSettings, LLMSettings, RequestSettings

log = logging.getLogger(__name__)

FORMAT = "novic-llm-annotations/1"
NO_SECONDARY = "none known"
RETRY_PROMPT = (
    "That reply is not one of the grades. Reply with exactly one of: " + ", ".join(POINTS) + "."
)
CAP_SCOPE = "for the annotations of this LLM (captions.requests.{cap} is {value})"
_GRADES = {cat: re.compile(rf"(?<![a-z]){cat}(?![a-z])") for cat in POINTS}


def parse_grade(content: str) -> str | None:
    """The one category a reply names ("Close primary." -> close_primary), else None (none,
    or several: a reply that lists the options grades nothing)."""
    text = re.sub(r"[\s\-]+", "_", content.strip().lower())
    found = {cat for cat, pattern in _GRADES.items() if pattern.search(text)}
    return found.pop() if len(found) == 1 else None


def _canon(noun: str) -> str:
    return canonical(noun) or noun.strip().lower()


@dataclass(frozen=True)
class Pair:
    """One question to the LLM: a predicted noun of an image, with the image's labels."""

    image: str
    noun: str  # canonical
    primary: tuple[str, ...]
    secondary: tuple[str, ...]

    @property
    def bucket(self) -> int:
        """Its reply-cache file: by the noun, so that every job finds a noun's replies."""
        return int(hashlib.sha256(self.noun.encode()).hexdigest()[:8], 16) % CACHE_BUCKETS


def reference_labels(
    label: str | None, judged: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(primary, secondary) labels of an image: its class name and people's correct_primary
    nouns; people's correct_secondary nouns (sorted, so that the prompt is stable)."""
    primary = [_canon(label)] if label else []
    primary += sorted(n for n, c in judged.items() if c == "correct_primary" and n not in primary)
    secondary = sorted(n for n, c in judged.items() if c == "correct_secondary")
    return tuple(primary), tuple(secondary)


def graded_samples(predictions: Mapping[str, Any], top_k: int, whole_vocab: bool) -> list[Sample]:
    """(image, class label, nouns) of each prediction sample, as class-level annotations are
    expanded over (novic.scoring.load_annotations)."""
    return [
        (s["id"], s.get("label"), _sample_nouns(s, top_k, whole_vocab))
        for s in predictions["samples"]
    ]


def _sample_nouns(sample: Mapping[str, Any], top_k: int, whole_vocab: bool) -> list[str]:
    """The canonical nouns of a sample that the scoring reads (free and baseline), once each."""
    nouns = [p["noun"] for p in sample.get("predictions", [])[:top_k]]
    if whole_vocab:
        nouns += list(sample.get("whole_vocab") or [])[:top_k]
    out: list[str] = []
    for noun in nouns:
        key = _canon(noun)
        if key and key not in out:
            out.append(key)
    return out


def read_predictions(path: str | Path) -> dict[str, Any]:
    """A predictions JSON of rule evaluate_benchmark, checked for what is read here."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read predictions: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("samples"), list):
        raise AnnotationError(f"{path}: key 'samples': expected a list of predicted samples")
    for i, sample in enumerate(doc["samples"]):
        if not isinstance(sample, dict) or not isinstance(sample.get("id"), str):
            raise AnnotationError(f"{path}: samples[{i}].id: expected an image id string")
        if not isinstance(sample.get("predictions", []), list):
            raise AnnotationError(f"{path}: samples[{i}].predictions: expected a list")
    return doc


def pending_pairs(
    predictions: Mapping[str, Any],
    human: Mapping[str, Mapping[str, str]],
    settings: AnnotateSettings,
) -> tuple[list[Pair], dict[str, int]]:
    """The pairs to grade (nouns people did not annotate, of images with reference labels) and
    counts: predicted nouns, annotated by people, without reference labels, to grade."""
    pairs: list[Pair] = []
    counts = {"nouns": 0, "human": 0, "no_reference": 0, "pending": 0}
    for sample in predictions["samples"]:
        image = sample["id"]
        judged = human.get(image, {})
        primary, secondary = reference_labels(sample.get("label"), judged)
        for noun in _sample_nouns(sample, settings.top_k, settings.whole_vocab):
            counts["nouns"] += 1
            if noun in judged:
                counts["human"] += 1
            elif not primary:
                counts["no_reference"] += 1
            else:
                counts["pending"] += 1
                pairs.append(Pair(image, noun, primary, secondary))
    return pairs, counts


async def grade_pair(pair: Pair, settings: AnnotateSettings, client: Any) -> dict[str, Any] | None:
    """Ask the LLM about one pair until a reply names one grade (settings.attempts requests);
    the row to record, or None if the client stopped (cap, fatal error)."""
    messages = settings.messages(
        ", ".join(pair.primary), ", ".join(pair.secondary) or NO_SECONDARY, pair.noun
    )
    meta = {"image": pair.image, "noun": pair.noun}
    replies: list[str] = []
    keys: list[str] = []
    grade = None
    for call in range(settings.attempts):
        reply = await client.complete(messages, call, meta, pair.bucket)
        if reply is None:
            return None
        replies.append(reply.content)
        keys.append(reply.key)
        grade = parse_grade(reply.content)
        if grade is not None:
            break
        messages = [
            *messages,
            {"role": "assistant", "content": reply.content},
            {"role": "user", "content": RETRY_PROMPT},
        ]
    row: dict[str, Any] = {
        "image": pair.image,
        "noun": pair.noun,
        "category": grade,
        "by": client.settings.model,
        "primary": list(pair.primary),
        "secondary": list(pair.secondary),
        "replies": replies,
        "keys": keys,
    }
    if grade is None:
        log.warning(
            "%s / %r: no grade in %d replies (last %r): recorded as failed",
            pair.image, pair.noun, len(replies), replies[-1][:80],
        )  # fmt: skip
        row["failed"] = f"no single grade in {len(replies)} replies"
    return row


async def grade_all(
    pairs: Sequence[Pair], settings: AnnotateSettings, client: Any, workers: int
) -> list[dict[str, Any]]:
    """Every pair's row (pairs the client stopped before are left out), in pair order."""
    rows: list[dict[str, Any] | None] = [None] * len(pairs)
    todo = iter(enumerate(pairs))
    done = 0
    last = time.monotonic()

    async def worker() -> None:
        nonlocal done, last
        for i, pair in todo:
            rows[i] = await grade_pair(pair, settings, client)
            done += 1
            if time.monotonic() - last >= 10 or done == len(pairs):
                last = time.monotonic()
                log.info("graded %d/%d pairs", done, len(pairs))

    await asyncio.gather(*(worker() for _ in range(max(workers, 1))))
    return [row for row in rows if row is not None]


def annotate_settings(params: Mapping[str, Any]) -> tuple[AnnotateSettings, LLMSettings]:
    """The grading settings and the LLM's, its sampling replaced by eval.annotate's."""
    settings = AnnotateSettings.from_config(params["annotate"])
    llm = dict(params["llm"]) | {
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
    }
    return settings, LLMSettings.from_config(params["name"], llm)


def run_annotate(
    predictions_path: str | Path,
    human_path: str | Path,
    out_path: str | Path,
    cache_dir: str | Path,
    params: dict[str, Any],
    runtime: dict[str, Any],
    threads: int = 2,
    server_log: str | Path | None = None,
) -> dict[str, Any]:
    """The annotate_predictions stage for one run and benchmark; returns what it writes.

    `params`: {"name": the captions.llms entry, "llm": its settings, "annotate": eval.annotate,
    "benchmark"}; `runtime`: captions.requests (concurrency, retries, caps: the caps count
    every reply in the LLM's annotation cache, over all runs and benchmarks). Nothing is sent,
    and no local server is started, when the cache answers every request (or nothing is
    left to grade).
    """
    settings, llm = annotate_settings(params)
    if llm.backend != "local":
        api_key_from_env(llm)  # a missing key stops the job at once, naming the variable
    policy = RequestSettings.from_config(runtime)
    predictions = read_predictions(predictions_path)
    human = load_annotations(
        human_path, graded_samples(predictions, settings.top_k, settings.whole_vocab)
    )
    pairs, counts = pending_pairs(predictions, human, settings)
    label = f"{params['benchmark']} ({predictions.get('run', '')}), LLM {params['name']}"
    log.info(
        "%s: %d predicted nouns, %d annotated by people, %d without reference labels, %d to grade",
        label, counts["nouns"], counts["human"], counts["no_reference"], counts["pending"],
    )  # fmt: skip
    cache = ReplyCache(cache_dir, range(CACHE_BUCKETS))
    start = time.monotonic()
    try:
        cached, usage = _from_cache(pairs, settings, llm, policy, cache)
        if cached is None:
            rows, usage = _grade(pairs, settings, llm, policy, cache, threads, server_log)
        else:
            rows = cached
            if pairs:
                log.info("%s: every request is answered in the cache; no server started", label)
    finally:
        cache.close()
    failed = sum(row["category"] is None for row in rows)
    doc = {
        "format": FORMAT,
        "benchmark": params["benchmark"],
        "run": predictions.get("run", ""),
        "llm": params["name"],
        "model": llm.model,
        "backend": llm.backend,
        "counts": counts | {"graded": len(rows) - failed, "failed": failed},
        "usage": usage,
        "elapsed_s": round(time.monotonic() - start, 2),
        "rows": sorted(rows, key=lambda r: (r["image"], r["noun"])),
    }
    write_json(doc, out_path)
    log.info(
        "%s: %d pairs graded, %d failed; %d new requests, %d from the cache",
        label, len(rows) - failed, failed, usage.get("answered", 0), usage.get("cached", 0),
    )  # fmt: skip
    return doc


class _Miss(Exception):
    pass


class _CacheOnly:
    """A client that answers from the reply cache only (raises _Miss on a request it lacks)."""

    def __init__(self, client: LLMClient) -> None:
        self.client, self.settings, self.usage = client, client.settings, client.usage

    async def complete(
        self, messages: list[dict[str, str]], call: int, meta: Any, bucket: int
    ) -> Reply:
        key = self.client.key(messages, call)
        entry = self.client.cache.get(key, bucket)
        if entry is None:
            raise _Miss(key)
        self.usage.cached += 1
        return Reply(
            key,
            entry["reply"]["content"],
            entry["reply"]["finish_reason"],
            entry["usage"]["prompt_tokens"],
            entry["usage"]["completion_tokens"],
            cached=True,
        )


def _from_cache(
    pairs: Sequence[Pair],
    settings: AnnotateSettings,
    llm: LLMSettings,
    policy: RequestSettings,
    cache: ReplyCache,
) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
    """The rows, if every request they need is in the cache (no server is started, nothing is
    sent: the client only hashes requests), else (None, {})."""
    # The key of a local model's request does not depend on the server's (random) port.
    url = {"local": "http://127.0.0.1:9/v1", "openai-compatible": llm.base_url}.get(llm.backend)
    key = "no-key" if llm.backend == "local" else api_key_from_env(llm)

    async def main() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        client = LLMClient(llm, policy, cache, url, key)
        try:
            rows = await grade_all(pairs, settings, _CacheOnly(client), 1)
            return rows, client.usage.as_dict()
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except _Miss:
        return None, {}


def _grade(
    pairs: Sequence[Pair],
    settings: AnnotateSettings,
    llm: LLMSettings,
    policy: RequestSettings,
    cache: ReplyCache,
    threads: int,
    server_log: str | Path | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Grade `pairs` (starting the backend only if there are any); the rows and the usage."""
    if not pairs:
        return [], {}

    async def grade(client: LLMClient) -> list[dict[str, Any]]:
        return await grade_all(pairs, settings, client, policy.concurrency)

    rows, client, _ = run_requests(
        llm, policy, cache, grade, threads, server_log, cap_scope=CAP_SCOPE
    )
    client.raise_if_stopped()
    return rows, client.usage.as_dict()


# --- scoring ----------------------------------------------------------------------------------


def _share_text(block: Mapping[str, Any]) -> str:
    shares = block.get("shares", {})
    return (
        f"annotated by people {shares.get('human', 0):.0%}, by the LLM {shares.get('llm', 0):.0%},"
        f" missing {shares.get('missing', 0):.0%}"
    )


def run_score(
    predictions_path: str | Path,
    human_path: str | Path,
    llm_paths: Sequence[str | Path],
    out_path: str | Path,
    specificity_path: str | Path | None = None,
) -> dict[str, Any]:
    """The score_open_vocab stage: the open-vocabulary points of a run's free predictions (and
    of the whole-vocabulary baseline where it ran) with people's and the LLM's annotations,
    people's first, and the share of the scored predictions each annotated."""
    predictions = read_predictions(predictions_path)
    human = load_annotations(human_path, graded_samples(predictions, 5, True))
    llm: dict[str, dict[str, tuple[str, str]]] = {}
    annotators = []
    for path in llm_paths:
        for image, nouns in load_llm_annotations(path).items():
            for noun, value in nouns.items():
                llm.setdefault(image, {}).setdefault(noun, value)
        annotators.append(json.loads(Path(path).read_text(encoding="utf-8")).get("model", ""))
    judged, by = merge_annotations(human, llm)
    spec = load_specificity(specificity_path or None)
    samples = predictions["samples"]
    free = {s["id"]: [p["noun"] for p in s.get("predictions", [])[:5]] for s in samples}
    out: dict[str, Any] = {
        "run": predictions.get("run", ""),
        "benchmark": predictions.get("benchmark", ""),
        "annotators": {"human": str(human_path), "llm": annotators},
        "open_vocab": {
            f"top{k}": score_predictions(free, judged, spec, k, by).to_dict() for k in (1, 5)
        },
    }
    if any("whole_vocab" in s for s in samples):
        base = {s["id"]: list(s.get("whole_vocab") or [])[:5] for s in samples}
        out["whole_vocab"] = {
            "open_vocab": {
                f"top{k}": score_predictions(base, judged, spec, k, by).to_dict() for k in (1, 5)
            }
        }
    write_json(out, out_path)
    top1 = out["open_vocab"]["top1"]
    log.info(
        "%s: open-vocabulary score %.3f (top-1; %s)", out["benchmark"], top1["score"],
        _share_text(top1),
    )  # fmt: skip
    return out
