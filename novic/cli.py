"""The `novic` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def show_synset(args: argparse.Namespace) -> int:
    """Print a synset, its place in the hierarchy and its subtree: a help for writing rules."""
    from novic.nouns import parse_rules
    from novic.wordnet import open_wordnet

    rules = parse_rules(args.rules) if args.rules else {}
    with open_wordnet(args.source, args.dict_dir) as wn:
        try:
            synset = wn.reader.synset(args.name)
        except Exception as error:  # nltk raises WordNetError or ValueError
            print(f"novic synset: unknown synset {args.name} ({error})", file=sys.stderr)
            return 2
        subtree = set(synset.closure(lambda s: s.hyponyms() + s.instance_hyponyms()))
        path = synset.hypernym_paths()[0]
        print(f"{synset.name()}  [{synset.lexname()}]  WordNet {wn.version}")
        print(f"  {synset.definition()}")
        print(f"  lemmas: {', '.join(synset.lemma_names())}")
        print(f"  path: {' > '.join(s.name() for s in path)}")
        examples = ", ".join(sorted(s.name() for s in subtree)[:8])
        print(f"  subtree: {len(subtree)} synsets, e.g. {examples}")
        ruled = [(s.name(), rules[s.name()]) for s in path if s.name() in rules]
        for name, rule in ruled:
            print(f"  rule on line {rule.line}: {''.join(sorted(rule.tags))} {name}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="novic", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    synset = commands.add_parser("synset", help="show a WordNet synset (to write synset rules)")
    synset.add_argument("name", help="a synset name such as dog.n.01")
    synset.add_argument("--rules", default="resources/synset_rules.txt", help="rules file")
    synset.add_argument("--source", default="auto", choices=["auto", "nltk", "dict"])
    synset.add_argument("--dict-dir", default="/usr/share/wordnet")
    synset.set_defaults(run=show_synset)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
