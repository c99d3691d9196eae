"""Sample a vocabulary to judge its picturability, and score the judged sample.

    python tools/sample_vocab.py results/vocab/ft2.parquet -n 200 --seed 0 > ft2.tsv
    python tools/sample_vocab.py --build --threshold 9 -n 100 --seed 0 > ft9.tsv
    python tools/sample_vocab.py --score ft2.tsv

A sample is a seeded random choice of N nouns (the same vocabulary and seed give the same
nouns), written as TSV: noun (the target), pretty form, multiplicity, synsets, their WordNet
definitions, and an empty `judgement` column. `--build` makes the paper config's dictionary
(the schema's `nouns` defaults) instead of reading a file; `--threshold` cuts FT{T} from either.
Fill the judgement with `y` (picturable), `b` (borderline) or `n` (not); `--score` counts them
and prints the precision, strict (y / judged) and lenient ((y + b) / judged).

Picturability criteria (judge the word as a label of a photo, reading its definitions):

- y, picturable: a concrete thing a photo can show as its main subject and a viewer could
  confirm from the image: objects, tools, vehicles, buildings and structures, garments, foods
  and drinks, animals, plants, fungi, landscape features and natural objects, visible
  phenomena (rainbow, lightning, flood), body parts, and object parts a close-up can show
  (heel, brake pad, the second hand of a clock); people named by a visible role, age, sex,
  outfit or activity (firefighter, bride, baby, cyclist). Specialist names count (a rare bird
  or a machine part a specialist can recognise), and so do generic ones (vehicle, container).
  At least one listed sense must be picturable and be a usual reading of the word. These are
  the kinds issue 14 asks the dictionary to hold.
- b, borderline: visible but not identifiable from the image alone: occupations or roles
  without a uniform or tool (accountant, dermatologist), a thing known only by its use, origin
  or history (souvenir, heirloom), taxon names of a genus or family ("genus Platalea"), scenes
  of events (wedding, parade), a picturable sense that is a rare reading of a word used mostly
  otherwise ("john" for a toilet, "pass" for a mountain pass).
- n, not: abstractions, feelings, quantities and amounts of money, legal or financial
  possessions, people known only by relation, status, belief or character (owner, heir,
  stranger, genius), named individuals and places a photo cannot tell apart (a river, a town;
  a landmark known on sight, such as the Eiffel Tower, is y), pronoun-like words (someone),
  numbers, and titles or abbreviations (dr, mr).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from novic.dictionary import read_nouns  # noqa: E402
from novic.nouns import noun_multiplicities, threshold_vocab  # noqa: E402

COLUMNS = ["noun", "pretty", "multiplicity", "synsets", "definitions", "judgement"]
JUDGEMENTS = {"y": "picturable", "b": "borderline", "n": "not"}


def sample_rows(table: pa.Table, size: int, seed: int) -> list[dict]:
    """`size` rows of the table (all of them if it has fewer) chosen with `seed`, in target
    order, each with its summed multiplicity."""
    rows = table.to_pylist()
    for row, count in zip(rows, noun_multiplicities(table), strict=True):
        row["multiplicity"] = count
    rows.sort(key=lambda row: row["target_noun"])
    chosen = random.Random(seed).sample(range(len(rows)), min(size, len(rows)))
    return [rows[i] for i in sorted(chosen)]


def sample_lines(rows: Sequence[dict], define: Callable[[str], str]) -> list[list[str]]:
    """TSV rows of a sample: one per noun, definitions as `synset: definition | ...`."""
    lines = []
    for row in rows:
        definitions = " | ".join(f"{name}: {define(name)}" for name in row["synsets"])
        lines.append(
            [
                row["target_noun"],
                row["pretty_noun"],
                str(row["multiplicity"]),
                " ".join(row["synsets"]),
                definitions or "(no synset: a class-list name)",
                "",
            ]
        )
    return lines


def score(path: Path) -> dict[str, float]:
    """Counts of a judged sample and its strict and lenient precision; unjudged rows are left
    out, an unknown judgement is an error naming the line."""
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8", newline="") as handle:
        for number, record in enumerate(csv.DictReader(handle, delimiter="\t"), 2):
            mark = (record.get("judgement") or "").strip().lower()[:1]
            if not mark:
                counts["unjudged"] += 1
            elif mark in JUDGEMENTS:
                counts[JUDGEMENTS[mark]] += 1
            else:
                raise ValueError(f"{path}:{number}: judgement {record['judgement']!r} is not y/b/n")
    judged = sum(counts[name] for name in JUDGEMENTS.values())
    result: dict[str, float] = {name: counts[name] for name in [*JUDGEMENTS.values(), "unjudged"]}
    if judged:
        result["precision"] = round(counts["picturable"] / judged, 3)
        result["lenient_precision"] = round(
            (counts["picturable"] + counts["borderline"]) / judged, 3
        )
    return result


def build_dictionary() -> pa.Table:
    """The paper config's dictionary: the schema's `nouns` defaults, run from the project root."""
    from novic.nouns import extract_dictionary
    from novic.schema import defaults

    with contextlib.chdir(ROOT):
        table, _ = extract_dictionary(defaults("nouns"))
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vocab", nargs="?", type=Path, help="a dictionary or vocabulary parquet")
    parser.add_argument("--build", action="store_true", help="build the paper config's dictionary")
    parser.add_argument("--threshold", type=int, help="cut FT{T} from the table")
    parser.add_argument("-n", "--size", type=int, default=200, help="nouns to sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet dict dir")
    parser.add_argument("--score", type=Path, help="score a judged sample TSV instead")
    args = parser.parse_args(argv)
    if args.score:
        for name, value in score(args.score).items():
            print(f"{name}\t{value}")
        return 0
    if args.build == (args.vocab is not None):
        parser.error("give a vocabulary file or --build (one of them)")
    table = build_dictionary() if args.build else read_nouns(args.vocab)
    if args.threshold is not None:
        table = threshold_vocab(table, args.threshold)
    rows = sample_rows(table, args.size, args.seed)

    from novic.wordnet import open_wordnet

    with open_wordnet("dict", args.wordnet) as wn:
        lines = sample_lines(rows, lambda name: wn.reader.synset(name).definition())
    writer = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
