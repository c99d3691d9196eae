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


def classify(args: argparse.Namespace) -> int:
    """Print the top nouns of each image (novic.classify)."""
    from novic.classify import classify_command

    try:
        return classify_command(
            args.model,
            args.images,
            args.gencfg,
            args.top_k,
            args.json,
            args.batch_size,
            args.device,
            args.guide,
            args.cache_dir,
        )
    except (OSError, ValueError, RuntimeError) as error:  # bad model, config or embedder
        print(f"novic classify: {error}", file=sys.stderr)
        return 2


def add_classify(commands: argparse._SubParsersAction) -> None:
    from novic.settings import DEFAULT_GENCFG

    cmd = commands.add_parser("classify", help="name the objects in images with a trained model")
    cmd.add_argument("images", nargs="+", help="image files")
    cmd.add_argument(
        "--model", required=True, help="decoder checkpoint (results/models/RUN/decoder.pt)"
    )
    cmd.add_argument("--gencfg", default=DEFAULT_GENCFG, help="generation config name")
    cmd.add_argument("--top-k", type=int, default=5, help="nouns shown per image")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.add_argument("--batch-size", type=int, default=64)
    cmd.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    cmd.add_argument("--guide", help="file of nouns (one per line) to choose from")
    cmd.add_argument("--cache-dir", help="folder of downloaded embedder weights")
    cmd.set_defaults(run=classify)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="novic", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    synset = commands.add_parser("synset", help="show a WordNet synset (to write synset rules)")
    synset.add_argument("name", help="a synset name such as dog.n.01")
    synset.add_argument("--rules", default="resources/synset_rules.txt", help="rules file")
    synset.add_argument("--source", default="auto", choices=["auto", "nltk", "dict"])
    synset.add_argument("--dict-dir", default="/usr/share/wordnet")
    synset.set_defaults(run=show_synset)
    add_classify(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
