"""LLM captions: prompts, generation per noun, parsing and filtering, sampling to training rows.

Generation (reference section 3). For each noun and grammatical number ("form": singular or
plural) the LLM is asked for a numbered list of `captions_per_call` captions that contain the
noun. A form's quota is `min(sum(variant freqs), quota_freq_cap) * quota_per_freq` captions; a
noun's calls go on until both quotas are met or a form had `max_unproductive_calls` calls in a
row that added nothing. The singular prompt names `pretty_noun`, the plural prompt the most
frequent plural variant.

Filtering. Numbered lines only (`3. ...`), the number stripped, unidecoded, quotes and trailing
`,.?!:;` stripped. A caption must contain a variant of the noun on word boundaries (any case,
spaces and hyphens interchangeable, possessive 's allowed); the variants of the caption's form
are replaced by `{singular}` or `{plural}`. A caption that mentions both forms goes to the form
further from its quota. Duplicates (case-insensitive) are dropped. During generation only these
structural rules count; the filter stage adds the configurable length limits, so changing
those re-filters the cached replies without any LLM call.

Sampling (CaptionsCacheWriter's rules). Per noun and form, up to
`template_multiplier * sum(freqs)` caption templates are drawn at random; then each variant v
gets `sample_multiplier * freq(v)` rows, cycling through the drawn templates with v filled in.
Each row has one target (the noun id, weight 1). Before sampling, a `heldout_fraction` of the
caption templates is set aside (at least one stays per noun and form); one row per held-out
template forms the held-out set that measures the decoder on captions it never saw.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from unidecode import unidecode

from novic.articles import indefinite_article
from novic.classlists import read_class_list, row_targets, variant_index
from novic.dictionary import META_THRESHOLD, nouns_fingerprint, read_nouns
from novic.io import read_metadata, sha256_json, write_json, write_parquet
from novic.llm import (
    CACHE_BUCKETS,
    LLMClient,
    ReplyCache,
    api_key_from_env,
    run_requests,
    share,
)
from novic.progress import format_eta
from novic.settings import FilterSettings, GenerateSettings, LLMSettings, RequestSettings
from novic.textdata import TextShardWriter, text_batch

log = logging.getLogger(__name__)

FORMS = ("singular", "plural")
PLACEHOLDER = {"singular": "{singular}", "plural": "{plural}"}

REPLY_SCHEMA = pa.schema(
    [
        pa.field("noun_id", pa.int32(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),  # order of the noun's calls
        pa.field("form", pa.string(), nullable=False),  # the form the prompt asked for
        pa.field("call", pa.int32(), nullable=False),  # index among this form's calls
        pa.field("key", pa.string(), nullable=False),  # request key in the reply cache
        pa.field("content", pa.string(), nullable=False),
        pa.field("finish_reason", pa.string(), nullable=False),
        pa.field("prompt_tokens", pa.int32(), nullable=False),
        pa.field("completion_tokens", pa.int32(), nullable=False),
    ]
)

CAPTION_SCHEMA = pa.schema(
    [
        pa.field("noun_id", pa.int32(), nullable=False),
        pa.field("form", pa.string(), nullable=False),
        pa.field("template", pa.string(), nullable=False),  # with {singular} or {plural}
        pa.field("seq", pa.int32(), nullable=False),  # the reply it came from
    ]
)

NUMBERED = re.compile(r"^\s*\d+\s*\.(?!\d)\s*(.*?)\s*$")
QUOTES = ('""', "''", "**", "``")
TRAILING = ",.?!:;"


# ---------------------------------------------------------------------------- nouns


@dataclass(frozen=True)
class Noun:
    """The parts of a noun-table row that captioning needs."""

    id: int
    target: str
    pretty: str
    singulars: tuple[str, ...]
    plurals: tuple[str, ...]
    singulars_freq: tuple[int, ...]
    plurals_freq: tuple[int, ...]
    frequency: float = 0.0

    def variants(self, form: str) -> tuple[str, ...]:
        return self.singulars if form == "singular" else self.plurals

    def freqs(self, form: str) -> tuple[int, ...]:
        return self.singulars_freq if form == "singular" else self.plurals_freq

    def prompt_noun(self, form: str) -> str:
        """Singular prompts name the pretty noun; plural prompts the most frequent plural."""
        if form == "singular":
            return self.pretty
        best = max(range(len(self.plurals)), key=lambda i: (self.plurals_freq[i], -i))
        return self.plurals[best]


def load_nouns(path: str | Path) -> list[Noun]:
    """The nouns of a vocabulary (or dictionary) file, in id order."""
    rows = read_nouns(path).to_pylist()
    nouns = []
    for row in rows:
        for form in FORMS:
            if len(row[f"{form}s"]) != len(row[f"{form}s_freq"]):
                raise ValueError(
                    f"{path}: noun id {row['id']}: {form}s and {form}s_freq differ in length"
                )
        nouns.append(
            Noun(
                row["id"],
                row["target_noun"],
                row["pretty_noun"],
                tuple(row["singulars"]),
                tuple(row["plurals"]),
                tuple(row["singulars_freq"]),
                tuple(row["plurals_freq"]),
                row["frequency"],
            )
        )
    return sorted(nouns, key=lambda n: n.id)


def select_nouns(
    nouns: Sequence[Noun],
    max_nouns: int,
    shard: int,
    shards: int,
    class_lists: Sequence[str | Path] = (),
) -> list[Noun]:
    """This shard's nouns: id % shards == shard, among the `max_nouns` most frequent (0 = all)
    and, with max_nouns, those the classes of `class_lists` name (novic.classlists.row_targets,
    as for the lists' frequency floors)."""
    if max_nouns:
        keep = {n.id for n in sorted(nouns, key=lambda n: (-n.frequency, n.id))[:max_nouns]}
        index = variant_index((n.target, n.singulars + n.plurals) for n in nouns)
        named = {
            t
            for path in class_lists
            for row in read_class_list(path)
            for t in row_targets(row, index)
        }
        keep |= {n.id for n in nouns if n.target in named}
        nouns = [n for n in nouns if n.id in keep]
    return [n for n in nouns if n.id % shards == shard]


# ---------------------------------------------------------------------------- settings


# ---------------------------------------------------------------------------- parsing


def parse_numbered(content: str, truncated: bool = False) -> list[str]:
    """The text of each numbered line (`12. text`); a truncated reply loses its last line."""
    lines = [m.group(1) for line in content.splitlines() if (m := NUMBERED.match(line))]
    return lines[:-1] if truncated and lines else lines


def normalise(line: str) -> str:
    """ASCII, single spaces, without surrounding quotes or trailing punctuation."""
    text = " ".join(unidecode(line).split())
    while len(text) >= 2 and text[0] + text[-1] in QUOTES:  # "...", **...**
        text = text[1:-1].strip()
    return text.rstrip(TRAILING).rstrip()


def _variant_regex(variants: Iterable[str]) -> re.Pattern[str] | None:
    alternatives = []
    for variant in sorted({unidecode(v).lower() for v in variants}, key=len, reverse=True):
        words = [re.escape(w) for w in re.split(r"[\s\-]+", variant.strip()) if w]
        if words:
            alternatives.append(r"[\s\-]+".join(words))
    if not alternatives:
        return None
    return re.compile(
        r"(?<![A-Za-z0-9])(?:" + "|".join(alternatives) + r")(?![A-Za-z0-9])", re.IGNORECASE
    )


class NounMatcher:
    """Finds a noun's singular and plural variants in a caption."""

    def __init__(self, noun: Noun) -> None:
        self.patterns = {  # a plural-only noun ("jeans") has no singular to find
            "singular": _variant_regex([*noun.singulars, noun.pretty]) if noun.singulars else None,
            "plural": _variant_regex(noun.plurals),
        }

    def forms(self, text: str) -> list[str]:
        return [f for f in FORMS if self.patterns[f] is not None and self.patterns[f].search(text)]

    def template(self, text: str, form: str) -> str:
        """`text` with every variant of `form` replaced by its placeholder."""
        return self.patterns[form].sub(PLACEHOLDER[form], text)


@dataclass
class Caption:
    form: str
    template: str
    seq: int


@dataclass
class NounCaptions:
    """The captions collected for one noun so far, with quotas and the filter rules."""

    noun: Noun
    quotas: dict[str, int]
    filters: FilterSettings = field(default_factory=FilterSettings)
    captions: list[Caption] = field(default_factory=list)
    lines: int = 0  # numbered lines seen

    def __post_init__(self) -> None:
        self.matcher = NounMatcher(self.noun)
        self.seen: set[str] = set()
        self.counts = dict.fromkeys(FORMS, 0)

    def need(self, form: str) -> int:
        return self.quotas[form] - self.counts[form]

    def accept(self, line: str, prompted: str, seq: int) -> Caption | None:
        """The caption made from one parsed line, or None if a rule rejects it."""
        text = normalise(line)
        f = self.filters
        if not text or "{" in text or "}" in text:
            return None
        if (f.min_length and len(text) < f.min_length) or (
            f.max_length and len(text) > f.max_length
        ):
            return None
        forms = self.matcher.forms(text)
        if not forms:
            return None
        if len(forms) > 1:  # both forms: the one further from its quota, else the prompted one
            forms.sort(key=lambda x: (-self.need(x), x != prompted))
        template = self.matcher.template(text, forms[0])
        dedup = template.lower()
        if dedup in self.seen:
            return None
        self.seen.add(dedup)
        return Caption(forms[0], template, seq)

    def add_reply(self, content: str, truncated: bool, prompted: str, seq: int) -> dict[str, int]:
        """Parse and filter one reply; return how many captions each form gained."""
        added = dict.fromkeys(FORMS, 0)
        for line in parse_numbered(content, truncated):
            self.lines += 1
            caption = self.accept(line, prompted, seq)
            if caption is not None:
                self.captions.append(caption)
                self.counts[caption.form] += 1
                added[caption.form] += 1
        return added


# ---------------------------------------------------------------------------- generation


class Progress:
    """Log lines with counts, rates and an ETA, at most every `every` seconds."""

    def __init__(self, total: int, label: str, every: float = 10.0) -> None:
        self.total, self.label, self.every = total, label, every
        self.done = self.requests = self.cached = self.captions = 0
        self.start = self.last = time.monotonic()

    def update(
        self,
        *,
        done: int = 0,
        requests: int = 0,
        cached: int = 0,
        captions: int = 0,
        force: bool = False,
    ) -> None:
        self.done += done
        self.requests += requests
        self.cached += cached
        self.captions += captions
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        return (
            f"{self.label}: {self.done}/{self.total} nouns, {self.requests} requests "
            f"({self.cached} cached), {self.captions} captions; {self.requests / elapsed:.2f} "
            f"req/s, {self.captions / elapsed:.2f} captions/s, ETA {format_eta(eta)}"
        )


async def generate_noun(
    noun: Noun, settings: GenerateSettings, client: Any, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Run one noun's calls; return its reply rows (REPLY_SCHEMA) in call order.

    `client` is an LLMClient (anything with `complete(messages, call, meta)`). If the client
    stops (cap or fatal error), the rows so far are returned and the caller raises.
    """
    quotas = {f: settings.quota(noun, f) for f in FORMS}
    state = NounCaptions(noun, quotas)
    calls = dict.fromkeys(FORMS, 0)
    idle = dict.fromkeys(FORMS, 0)
    rows: list[dict[str, Any]] = []
    while True:
        open_forms = [
            f for f in FORMS if state.need(f) > 0 and idle[f] < settings.max_unproductive_calls
        ]
        if not open_forms:
            break
        form = max(open_forms, key=state.need)  # the form furthest from its quota first
        meta = {"noun_id": noun.id, "form": form, "call": calls[form]}
        messages = settings.messages(noun, form)
        reply = await client.complete(messages, calls[form], meta, noun.id % CACHE_BUCKETS)
        if reply is None:  # the client stopped
            break
        added = state.add_reply(reply.content, reply.truncated, form, len(rows))
        if reply.finish_reason not in ("stop", "length"):
            log.warning(
                "noun %d (%s) %s call %d: finish_reason %s, %d characters",
                noun.id,
                noun.target,
                form,
                calls[form],
                reply.finish_reason,
                len(reply.content),
            )
        rows.append(
            {
                "noun_id": noun.id,
                "seq": len(rows),
                "form": form,
                "call": calls[form],
                "key": reply.key,
                "content": reply.content,
                "finish_reason": reply.finish_reason,
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
            }
        )
        calls[form] += 1
        idle[form] = 0 if added[form] else idle[form] + 1
        if progress is not None:
            progress.update(requests=1, cached=int(reply.cached), captions=sum(added.values()))
    if progress is not None:
        progress.update(done=1)
    return rows


async def generate_all(
    nouns: Sequence[Noun],
    settings: GenerateSettings,
    client: Any,
    progress: Progress,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Every noun's calls; `workers` nouns at a time, each to its end (so nouns finish at a
    steady rate and the ETA means something). Rows come in noun order."""
    results: list[list[dict[str, Any]]] = [[] for _ in nouns]
    todo = iter(enumerate(nouns))  # shared by the workers: each noun is taken once

    async def worker() -> None:
        for i, noun in todo:
            results[i] = await generate_noun(noun, settings, client, progress)

    await asyncio.gather(*(worker() for _ in range(max(workers, 1))))
    progress.update(force=True)
    return [row for rows in results for row in rows]


def replies_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=REPLY_SCHEMA)


# ---------------------------------------------------------------------------- filtering


def filter_replies(
    replies: pa.Table, nouns: Sequence[Noun], settings: GenerateSettings, filters: FilterSettings
) -> tuple[pa.Table, dict[str, Any]]:
    """Captions (CAPTION_SCHEMA) from reply rows, with yield statistics."""
    by_noun: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in replies.select(["noun_id", "seq", "form", "content", "finish_reason"]).to_pylist():
        by_noun[row["noun_id"]].append(row)
    known = {n.id: n for n in nouns}
    unknown = sorted(set(by_noun) - set(known))
    if unknown:
        raise ValueError(f"replies name noun ids that are not in the vocabulary: {unknown[:10]}")
    out: list[dict[str, Any]] = []
    lines = 0
    counts = dict.fromkeys(FORMS, 0)
    below = 0
    for noun_id in sorted(by_noun):
        noun = known[noun_id]
        quotas = {f: settings.quota(noun, f) for f in FORMS}
        state = NounCaptions(noun, quotas, filters)
        for row in sorted(by_noun[noun_id], key=lambda r: r["seq"]):
            state.add_reply(
                row["content"], row["finish_reason"] == "length", row["form"], row["seq"]
            )
        lines += state.lines
        below += any(state.need(f) > 0 for f in FORMS)
        for caption in state.captions:
            out.append(
                {
                    "noun_id": noun_id,
                    "form": caption.form,
                    "template": caption.template,
                    "seq": caption.seq,
                }
            )
            counts[caption.form] += 1
    stats = {
        "replies": replies.num_rows,
        "nouns_with_replies": len(by_noun),
        "numbered_lines": lines,
        "captions": len(out),
        "singular_captions": counts["singular"],
        "plural_captions": counts["plural"],
        "yield_per_line": round(len(out) / lines, 4) if lines else 0.0,
        "captions_per_reply": round(len(out) / replies.num_rows, 3) if replies.num_rows else 0.0,
        "nouns_below_quota": below,
        "nouns_without_captions": len(by_noun) - len({r["noun_id"] for r in out}),
    }
    return pa.Table.from_pylist(out, schema=CAPTION_SCHEMA), stats


# ---------------------------------------------------------------------------- sampling


_ARTICLE = re.compile(r"\b([Aa]n?) \{singular\}")


def fill(template: str, form: str, variant: str) -> str:
    """The caption with `variant` in place of the placeholder ("a {singular}" -> "an apple")."""
    if form == "singular":

        def article(m: re.Match[str]) -> str:
            a = indefinite_article(variant)
            return (a.capitalize() if m.group(1)[0] == "A" else a) + " {singular}"

        template = _ARTICLE.sub(article, template)
    return template.replace(PLACEHOLDER[form], variant)


def sample_rows(
    captions: pa.Table,
    nouns: Sequence[Noun],
    template_multiplier: int,
    sample_multiplier: int,
    seed: int,
) -> tuple[list[str], np.ndarray]:
    """Training texts and their noun ids, by the reference's caption sampling rules.

    Each noun draws with its own generator (seeded by `seed` and the noun id), so a noun's
    rows do not change when other nouns come or go.
    """
    if sample_multiplier < template_multiplier:
        raise ValueError(
            f"captions.sample.sample_multiplier ({sample_multiplier}) must be >= "
            f"template_multiplier ({template_multiplier})"
        )
    templates: dict[tuple[int, str], list[str]] = defaultdict(list)
    for row in captions.select(["noun_id", "form", "template"]).to_pylist():
        templates[(row["noun_id"], row["form"])].append(row["template"])
    texts: list[str] = []
    ids: list[int] = []
    for noun in sorted(nouns, key=lambda n: n.id):
        rng = random.Random(f"{seed}:{noun.id}")
        for form in FORMS:
            pool = templates.get((noun.id, form))
            freqs = noun.freqs(form)
            if not pool or not freqs:
                continue
            chosen = rng.sample(pool, min(len(pool), template_multiplier * sum(freqs)))
            i = 0
            for variant, freq in zip(noun.variants(form), freqs, strict=True):
                for _ in range(sample_multiplier * freq):
                    texts.append(fill(chosen[i % len(chosen)], form, variant))
                    i += 1
            ids.extend([noun.id] * i)
    return texts, np.asarray(ids, dtype=np.int32)


def heldout_mask(captions: pa.Table, fraction: float, seed: int) -> np.ndarray:
    """Which caption templates to hold out of training (a boolean per row).

    Each template is held out with probability `fraction`, decided by a hash of (seed, noun,
    form, template), so the split of one noun's captions does not change when other nouns or
    captions come or go. A noun's form keeps at least one training template.
    """
    rows = captions.select(["noun_id", "form", "template"]).to_pylist()
    draws = np.array(
        [
            int.from_bytes(
                hashlib.sha256(
                    f"{seed}:{r['noun_id']}:{r['form']}:{r['template']}".encode()
                ).digest()[:8],
                "big",
            )
            / 2**64
            for r in rows
        ]
    )
    held = draws < fraction
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[(r["noun_id"], r["form"])].append(i)
    for members in groups.values():
        if held[members].all():
            held[max(members, key=lambda i: draws[i])] = False
    return held


def heldout_rows(
    captions: pa.Table, nouns: Sequence[Noun], max_rows: int, seed: int
) -> tuple[list[str], np.ndarray]:
    """One evaluation row per held-out caption template (a variant of its form drawn by
    frequency), at most `max_rows` of them (a random subset)."""
    by_id = {noun.id: noun for noun in nouns}
    texts: list[str] = []
    ids: list[int] = []
    for row in captions.select(["noun_id", "form", "template"]).to_pylist():
        noun = by_id.get(row["noun_id"])
        freqs = noun.freqs(row["form"]) if noun else []
        if not freqs:
            continue
        rng = random.Random(f"{seed}:heldout:{row['noun_id']}:{row['template']}")
        variant = rng.choices(noun.variants(row["form"]), weights=freqs)[0]
        texts.append(fill(row["template"], row["form"], variant))
        ids.append(noun.id)
    if len(texts) > max_rows:
        keep = sorted(random.Random(f"{seed}:heldout").sample(range(len(texts)), max_rows))
        texts, ids = [texts[i] for i in keep], [ids[i] for i in keep]
    return texts, np.asarray(ids, dtype=np.int32)


def read_captions(path: str | Path) -> pa.Table:
    table = pq.read_table(path)
    missing = [n for n in CAPTION_SCHEMA.names if n not in table.schema.names]
    if missing:
        raise ValueError(f"{path}: not a captions table, missing columns {missing}")
    return table.select(CAPTION_SCHEMA.names)


def vocab_identity(path: str | Path) -> str:
    """The vocabulary's content hash (written into every caption artifact)."""
    return nouns_fingerprint(path)


# ---------------------------------------------------------------------------- stages


def run_generate(
    vocab_path: str | Path,
    replies_path: str | Path,
    stats_path: str | Path,
    cache_dir: str | Path,
    params: dict[str, Any],
    runtime: dict[str, Any],
    shard: int,
    threads: int = 2,
    server_log: str | Path | None = None,
) -> dict[str, Any]:
    """The generate_captions stage for one shard; returns the stats it writes.

    `params`: {"name", "llm", "generate", "shards"} (what determines the replies);
    `runtime`: captions.requests (how they are sent: concurrency, retries, caps), whose caps
    are split evenly over the shards. The reply cache in `cache_dir` outlives failed runs;
    concurrent jobs share it without sending a request twice. The job ends if the process that
    started it (Snakemake) dies.
    """
    settings = LLMSettings.from_config(params["name"], params["llm"])
    if settings.backend != "local":
        api_key_from_env(settings)  # a missing key stops the job at once, naming the variable
    gen = GenerateSettings.from_config(params["generate"])
    shards = int(params["shards"])
    policy = RequestSettings.from_config(
        {
            **runtime,
            "max_requests": share(runtime.get("max_requests"), shards, shard),
            "max_tokens": share(runtime.get("max_tokens"), shards, shard),
        }
    )
    nouns = select_nouns(load_nouns(vocab_path), gen.max_nouns, shard, shards, gen.class_lists)
    label = f"{params['name']} shard {shard + 1}/{shards}"
    log.info(
        "%s: %d nouns, backend %s, model %s", label, len(nouns), settings.backend, settings.model
    )
    ids = {n.id for n in nouns}
    cache = ReplyCache(
        cache_dir,
        {i % CACHE_BUCKETS for i in ids},
        keep=lambda entry: entry.get("meta", {}).get("noun_id") in ids,
    )
    start = time.monotonic()
    progress = Progress(len(nouns), label)

    async def generate(client: LLMClient) -> list[dict[str, Any]]:
        progress.start = progress.last = time.monotonic()  # rates from the first request on
        return await generate_all(nouns, gen, client, progress, policy.concurrency)

    try:
        rows, client, requests_s = run_requests(
            settings, policy, cache, generate, threads, server_log, seed=shard
        )
    finally:
        cache.close()
    elapsed = time.monotonic() - start
    client.raise_if_stopped()
    stats = {
        "llm": params["name"],
        "backend": settings.backend,
        "model": settings.model,
        "shard": shard,
        "shards": shards,
        "nouns": len(nouns),
        "calls": len(rows),
        "captions_counted": progress.captions,
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "elapsed_s": round(elapsed, 2),  # with the local server's start
        "requests_s": round(requests_s, 2),
        "calls_per_s": round(len(rows) / elapsed, 3) if elapsed else 0.0,
        "captions_per_s": round(progress.captions / elapsed, 3) if elapsed else 0.0,
        "usage": client.usage.as_dict(),
    }
    write_parquet(
        replies_table(rows),
        replies_path,
        {
            "novic.artifact": "caption_replies",
            "novic.vocab_sha256": vocab_identity(vocab_path),
            "novic.llm": params["name"],
            "novic.shard": f"{shard}/{shards}",
        },
    )
    write_json(stats, stats_path)
    log.info(
        "%s: done, %d calls (%d new requests), %d captions counted, %.1f s",
        label,
        len(rows),
        client.usage.answered,
        progress.captions,
        elapsed,
    )
    return stats


def run_filter(
    vocab_path: str | Path,
    replies_paths: Sequence[str | Path],
    shard_stats_paths: Sequence[str | Path],
    captions_path: str | Path,
    stats_path: str | Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The filter_captions stage: all shards' replies -> one captions table plus yield stats.

    `params`: {"generate": captions.generate (quotas), "filter": captions.filter}.
    """
    gen = GenerateSettings.from_config(params["generate"])
    filters = FilterSettings(**params["filter"])
    nouns = load_nouns(vocab_path)
    vocab_sha = vocab_identity(vocab_path)
    tables = []
    for path in replies_paths:
        meta = read_metadata(path)
        if meta.get("novic.vocab_sha256") != vocab_sha:
            raise ValueError(
                f"{path}: replies were generated for another vocabulary "
                f"({meta.get('novic.vocab_sha256')} != {vocab_sha}); re-run them"
            )
        tables.append(pq.read_table(path).select(REPLY_SCHEMA.names).cast(REPLY_SCHEMA))
    replies = pa.concat_tables(tables) if tables else REPLY_SCHEMA.empty_table()
    captions, stats = filter_replies(replies, nouns, gen, filters)
    usage: dict[str, float] = defaultdict(int)
    for path in shard_stats_paths:
        shard = json.loads(Path(path).read_text(encoding="utf-8"))
        for key in ("total_requests", "total_tokens", "retries", "answered", "cached"):
            usage[key] += shard["usage"][key]
    stats["usage"] = dict(usage)
    content = sha256_json(captions.to_pydict())
    write_parquet(
        captions,
        captions_path,
        {
            "novic.artifact": "captions",
            "novic.vocab_sha256": vocab_sha,
            "novic.content_sha256": content,
        },
    )
    write_json(stats, stats_path)
    log.info(
        "%d captions from %d replies (%.1f%% of %d numbered lines)",
        stats["captions"],
        stats["replies"],
        100 * stats["yield_per_line"],
        stats["numbered_lines"],
    )
    return stats


def run_sample(
    vocab_path: str | Path,
    captions_path: str | Path,
    out_paths: Sequence[str | Path],
    heldout_path: str | Path,
    params: dict[str, Any],
) -> dict[str, int]:
    """The sample_captions stage: caption templates -> shuffled training rows in len(out_paths)
    text-dataset shards of (nearly) equal size, and rows of the held-out templates (never
    trained on) in `heldout_path`. `params`: captions.sample."""
    nouns = load_nouns(vocab_path)
    captions = read_captions(captions_path)
    seed = params["seed"]
    held = heldout_mask(captions, params["heldout_fraction"], seed)
    texts, ids = sample_rows(
        captions.filter(pa.array(~held)),
        nouns,
        params["template_multiplier"],
        params["sample_multiplier"],
        seed,
    )
    order = np.random.default_rng(seed).permutation(len(texts))
    meta = {
        "novic.artifact": "caption_samples",
        "novic.vocab_sha256": vocab_identity(vocab_path),
        "novic.threshold": read_metadata(vocab_path).get(META_THRESHOLD, ""),
        "novic.captions_sha256": read_metadata(captions_path).get("novic.content_sha256", ""),
        "novic.settings": json.dumps(params, sort_keys=True),
    }
    parts = np.array_split(order, len(out_paths))
    for k, (path, part) in enumerate(zip(out_paths, parts, strict=True)):
        with TextShardWriter(path, {**meta, "novic.shard": f"{k}/{len(out_paths)}"}) as writer:
            for start in range(0, len(part), 65_536):
                rows = part[start : start + 65_536]
                writer.write(_rows_batch([texts[i] for i in rows], ids[rows]))
    held_texts, held_ids = heldout_rows(
        captions.filter(pa.array(held)), nouns, params["heldout_rows"], seed
    )
    with TextShardWriter(heldout_path, {**meta, "novic.split": "heldout"}) as writer:
        writer.write(_rows_batch(held_texts, held_ids))
    log.info(
        "%d caption samples for %d nouns in %d shard(s); %d held-out rows from %d templates",
        len(texts),
        len(set(ids.tolist())),
        len(out_paths),
        len(held_texts),
        int(held.sum()),
    )
    return {"rows": len(texts), "heldout_rows": len(held_texts)}


def _rows_batch(texts: list[str], ids: np.ndarray) -> pa.RecordBatch:
    """Text-dataset rows with one target each (weight 1)."""
    return text_batch(texts, ids[:, None], np.ones((len(texts), 1), np.float32))


def reply_cache_dir(replies_path: str | Path) -> Path:
    """The reply cache of an LLM: .../{llm}/ft{T}/replies/shard-N.parquet -> .../{llm}/cache.

    Shared by every vocabulary and shard count of that LLM, so that none pays for a request
    another has paid for. Not a Snakemake output on purpose: Snakemake deletes the outputs of a
    failed job, and the cache must outlive failures.
    """
    return Path(replies_path).parent.parent.parent / "cache"
