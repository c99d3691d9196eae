"""Judge a vocabulary noun by noun, and apply the judgements to the curated resources.

    python tools/judge_vocab.py chunks results/vocab/ft2.parquet --parts 8 --out judging/
    python tools/judge_vocab.py apply judging/decisions*.tsv

This is how every FT2 noun of the default dictionary was judged (docs/nouns.md, Quality checks).

`chunks` writes the vocabulary in N text files (judging/chunk1.txt ...), one block per noun: its
forms with their multiplicities, its selected synsets (definition, hypernym, WordNet tagged
count) and the other WordNet senses of its forms, and the forms already in the homographs file.
`--skip FILE...` leaves out the nouns of earlier decision files (a second round after a change).

A judge (a person, or a helper briefed with tools/sample_vocab.py's criteria) writes one
decisions TSV per chunk, header `noun  verdict  action  why`, one line per noun: verdict y, b or
n, and the action that fixes a b or n noun, several joined by ` ; `:

- `keep`
- `share FORM X`: FORM is mostly another word; X in [0, 1] is the share that is the object
- `drop FORM`: a synonym that almost never names its object
- `exclude SYNSET`: the selected synset is not picturable (an E rule: that synset only)

`apply` appends what the decisions add, each with its reason, to resources/homographs.txt (new
shares and drops) and resources/synset_rules.txt (new E rules, people and things apart), under a
heading given by `--section`. A form already listed or a synset that already has a rule is not
changed; those are printed as conflicts to settle by hand. The lowest share given to a form
wins. Rebuild the dictionary afterwards and re-check the vocabulary sizes (nouns.frequency_scale).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from novic.dictionary import read_nouns  # noqa: E402
from novic.forms import canonical  # noqa: E402
from novic.frequency import read_homographs  # noqa: E402
from novic.synsets import parse_rules  # noqa: E402
from novic.wordnet import lemma_senses, open_wordnet, parents, sense_counts  # noqa: E402

HOMOGRAPHS = ROOT / "resources" / "homographs.txt"
RULES = ROOT / "resources" / "synset_rules.txt"
VERDICTS = ("y", "b", "n")
OTHER_SENSES = 8  # the most used other senses shown per noun


# --- chunks -------------------------------------------------------------------------------------


def noun_block(row: dict, reader: object, counts: dict[str, int], listed: Set[str]) -> str:
    """One noun's block for a judge: forms, own senses, other senses of its main forms."""
    forms = [*zip(row["singulars"], row["singulars_freq"], strict=True)]
    forms += zip(row["plurals"], row["plurals_freq"], strict=True)
    total = sum(f for _, f in forms)
    own = row["synsets"]
    own_counts: dict[str, int] = {}
    other: dict[str, int] = {}
    for form, freq in forms:
        if freq < 2 and freq < 0.1 * total:
            continue  # a rare variant: its senses would only crowd the block
        for name, count in lemma_senses(reader, counts, form.replace(" ", "_")):
            into = own_counts if name in own else other
            into[name] = max(into.get(name, 0), count)
    variants = ", ".join(f"{form}={freq}" for form, freq in forms)
    lines = [f"## {row['target_noun']}  (multiplicity {total}; forms: {variants})"]
    for name in own:
        synset = reader.synset(name)
        up = parents(synset)
        kind = up[0].name() if up else "-"
        lines.append(
            f"  OWN {name} [tagged {own_counts.get(name, 0)}] (is a {kind}): {synset.definition()}"
        )
    for name, count in sorted(other.items(), key=lambda item: -item[1])[:OTHER_SENSES]:
        lines.append(f"  other {name} [tagged {count}]: {reader.synset(name).definition()}")
    already = [form for form, _ in forms if canonical(form) in listed]
    if already:
        lines.append("  already in homographs.txt: " + ", ".join(already))
    return "\n".join(lines)


def write_chunks(
    table: pa.Table, parts: int, out: Path, skip: set[str], wordnet: str = "/usr/share/wordnet"
) -> list[Path]:
    """Write the table's nouns (minus `skip`) in `parts` chunk files; return their paths."""
    rows = [row for row in table.to_pylist() if row["target_noun"] not in skip]
    rows.sort(key=lambda row: row["target_noun"])
    listed = set(read_homographs(HOMOGRAPHS))
    with open_wordnet("dict", wordnet) as wn:
        counts = sense_counts(wn.reader)
        blocks = [noun_block(row, wn.reader, counts, listed) for row in rows]
    out.mkdir(parents=True, exist_ok=True)
    size = -(-len(blocks) // parts) if blocks else 0
    paths = []
    for i in range(parts):
        path = out / f"chunk{i + 1}.txt"
        path.write_text("\n".join(blocks[i * size : (i + 1) * size]) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


# --- decisions ----------------------------------------------------------------------------------


@dataclass
class Decisions:
    """What a set of decision files asks for, each entry with its reason."""

    verdicts: dict[str, str] = field(default_factory=dict)
    shares: dict[str, tuple[float, str]] = field(default_factory=dict)  # canonical form
    drops: dict[str, str] = field(default_factory=dict)  # canonical form
    excludes: dict[str, str] = field(default_factory=dict)  # synset name


def read_decisions(paths: Sequence[Path]) -> Decisions:
    """Parse decision TSVs; a malformed line is an error naming the file and line."""
    found = Decisions()
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            for number, row in enumerate(rows, 2):
                where = f"{path}:{number}"
                noun, verdict = row.get("noun") or "", (row.get("verdict") or "").strip()
                if verdict not in VERDICTS:
                    raise ValueError(f"{where}: verdict {verdict!r} is not y, b or n")
                found.verdicts[noun] = verdict
                why = (row.get("why") or "").replace("#", "").strip()
                for action in filter(None, (a.strip() for a in (row["action"] or "").split(";"))):
                    _add(found, action, noun, why, where)
    return found


def _add(found: Decisions, action: str, noun: str, why: str, where: str) -> None:
    kind, _, arg = action.partition(" ")
    if kind == "keep" and not arg:
        return
    if kind == "share":
        form, _, value = arg.rpartition(" ")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        key = canonical(form) if form else None
        if not key or not 0.0 <= share <= 1.0:
            raise ValueError(f"{where}: {action!r}: expected 'share FORM X' with X in [0, 1]")
        if key not in found.shares or share < found.shares[key][0]:
            found.shares[key] = (share, _reason(noun, key, why))
    elif kind == "drop" and canonical(arg):
        key = canonical(arg)
        found.drops[key] = _reason(noun, key, why)
    elif kind == "exclude" and arg.count(".") >= 2:
        found.excludes.setdefault(arg.strip(), f"{noun}: {why}")
    else:
        raise ValueError(f"{where}: unknown action {action!r} (keep, share, drop, exclude)")


def _reason(noun: str, form: str, why: str) -> str:
    """The why of an entry, naming the noun when the entry's form is another one."""
    return why if canonical(noun) == form else f"{noun}: {why}"


def apply(
    decisions: Decisions,
    section: str,
    homographs: Path = HOMOGRAPHS,
    rules: Path = RULES,
    wordnet: str = "/usr/share/wordnet",
) -> list[str]:
    """Append the new shares, drops and E rules under `section`; return the conflicts."""
    listed = read_homographs(homographs)
    ruled = parse_rules(rules)
    conflicts = [f"{form}: listed already" for form in decisions.shares if form in listed]
    conflicts += [f"{form}: listed already" for form in decisions.drops if form in listed]
    conflicts += [f"{name}: has a rule already" for name in decisions.excludes if name in ruled]
    lines = ["", f"# {section}"]
    for form, (share, why) in sorted(decisions.shares.items()):
        if form not in listed and form not in decisions.drops:
            lines.append(f"{form:<16} {share:g}  # {why}".rstrip(" #"))
    for form, why in sorted(decisions.drops.items()):
        if form not in listed:
            lines.append(f"{form:<16} drop  # {why}".rstrip(" #"))
    with homographs.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    groups: dict[str, list[str]] = {"people": [], "things": []}
    with open_wordnet("dict", wordnet) as wn:
        person = wn.reader.synset("person.n.01")
        for name, why in sorted(decisions.excludes.items()):
            if name in ruled:
                continue
            synset = wn.reader.synset(name)
            above = set(synset.closure(parents))
            groups["people" if person in above else "things"].append(f"E {name:<36} # {why}")
    text = [f"\n# {section}"]
    text += ["# People without a visible sign of what names them.", *groups["people"]]
    text += ["# Things and others.", *groups["things"]]
    with rules.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(text) + "\n")
    return conflicts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    chunks = commands.add_parser("chunks", help="write a vocabulary in chunks for judges")
    chunks.add_argument("vocab", type=Path, help="a vocabulary parquet (results/vocab/ft2.parquet)")
    chunks.add_argument("--parts", type=int, default=8)
    chunks.add_argument("--out", type=Path, default=Path("judging"))
    chunks.add_argument("--skip", type=Path, nargs="*", default=[], help="earlier decision TSVs")
    chunks.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet dict dir")
    applying = commands.add_parser("apply", help="append decisions to the curated resources")
    applying.add_argument("decisions", type=Path, nargs="+")
    applying.add_argument("--section", default="Judged nouns", help="heading of the new entries")
    applying.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet dict dir")
    args = parser.parse_args(argv)
    if args.command == "chunks":
        skip = set(read_decisions(args.skip).verdicts) if args.skip else set()
        for path in write_chunks(read_nouns(args.vocab), args.parts, args.out, skip, args.wordnet):
            print(path)
        return 0
    decisions = read_decisions(args.decisions)
    for conflict in apply(decisions, args.section, wordnet=args.wordnet):
        print("conflict:", conflict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
