"""The `novic` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def show_synset(args: argparse.Namespace) -> int:
    """Print a synset, its place in the hierarchy and its subtree: a help for writing rules."""
    from novic.schema import defaults
    from novic.synsets import parse_rules, resolve_rules, select_synsets
    from novic.wordnet import open_wordnet, parents

    rules = parse_rules(args.rules) if args.rules else {}
    params = defaults("nouns")
    with open_wordnet(args.source, args.dict_dir) as wn:
        try:
            synset = wn.reader.synset(args.name)
        except Exception as error:  # nltk raises WordNetError or ValueError
            print(f"novic synset: unknown synset {args.name} ({error})", file=sys.stderr)
            return 2
        rules = resolve_rules(rules, lambda n: wn.reader.synset(n).name(), args.rules)
        subtree = set(synset.closure(lambda s: s.hyponyms() + s.instance_hyponyms()))
        above = [synset, *synset.closure(parents)]
        path = synset.hypernym_paths()[0]
        name = synset.name()
        links = {s.name(): [p.name() for p in parents(s)] for s in above}
        selected = select_synsets(
            [name],
            links.__getitem__,
            lambda n: wn.reader.synset(n).lexname(),
            params["lexnames"],
            rules,
            lambda n: bool(wn.reader.synset(n).instance_hypernyms()),
            params["instances"],
        )
        print(f"{name}  [{synset.lexname()}]  WordNet {wn.version}")
        print(f"  {synset.definition()}")
        print(f"  lemmas: {', '.join(synset.lemma_names())}")
        print(f"  path: {' > '.join(s.name() for s in path)}")
        examples = ", ".join(sorted(s.name() for s in subtree)[:8])
        print(f"  subtree: {len(subtree)} synsets, e.g. {examples}")
        ruled = sorted((rules[s.name()].line, s.name()) for s in above if s.name() in rules)
        for line, ruled_name in ruled:
            print(f"  rule on line {line}: {''.join(sorted(rules[ruled_name].tags))} {ruled_name}")
        verdict = "selected" if selected else "not selected"
        print(f"  {verdict} with the default nouns.lexnames and nouns.instances")
    return 0


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the flag in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def caption_file(path: str) -> list[str]:
    """argparse type: the captions in a file, one per line, blank and '#' lines skipped; '-' is
    stdin."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as file:
                text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise argparse.ArgumentTypeError(f"cannot read {path}: {reason}") from None
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


def classify(args: argparse.Namespace) -> int:
    """Print the top nouns of each image and text (novic.classify)."""
    from novic.classify import classify_command

    if not (args.images or args.texts):
        args.error("nothing to classify: give image files, --text or --text-file")
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
            allow_download=args.allow_download,
            trust_pickled=args.trust_pickled_checkpoint,
            texts=args.texts or [],
        )
    except (OSError, ValueError, RuntimeError) as error:  # bad model, config or embedder
        print(f"novic classify: {error}", file=sys.stderr)
        return 2


def add_model_options(cmd: argparse.ArgumentParser) -> None:
    """The options of loading a trained model and its embedder (classify and serve)."""
    cmd.add_argument("--cache-dir", help="folder of downloaded embedder weights")
    cmd.add_argument(
        "--allow-download",
        action="store_true",
        help="let the embedder's weights be downloaded (default: the local cache only)",
    )
    cmd.add_argument(
        "--trust-pickled-checkpoint",
        action="store_true",
        help="read an old pickled decoder file; unpickling can run code hidden in the file",
    )


def add_classify(commands: argparse._SubParsersAction) -> None:
    from novic.settings import DEFAULT_GENCFG

    cmd = commands.add_parser(
        "classify", help="name the objects in images (or texts) with a trained model"
    )
    cmd.add_argument("images", nargs="*", help="image files")
    cmd.add_argument(
        "--text",
        action="append",
        dest="texts",
        metavar="TEXT",
        help="a caption to decode from its text embedding (repeatable)",
    )
    cmd.add_argument(
        "--text-file",
        action="extend",
        dest="texts",
        type=caption_file,
        metavar="FILE",
        help="captions, one per line ('#' lines skipped; - for stdin)",
    )
    cmd.add_argument(
        "--model", required=True, help="decoder checkpoint (results/models/RUN/decoder.pt)"
    )
    cmd.add_argument("--gencfg", default=DEFAULT_GENCFG, help="generation config name")
    cmd.add_argument("--top-k", type=positive_int, default=5, help="nouns shown per image")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd.add_argument("--batch-size", type=positive_int, default=64, help="images per CLIP batch")
    cmd.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    cmd.add_argument("--guide", help="file of nouns (one per line) to choose from")
    add_model_options(cmd)
    cmd.set_defaults(run=classify, error=cmd.error)


def convert_checkpoint(args: argparse.Namespace) -> int:
    """Rewrite an old pickled decoder file in the current format (novic.checkpoint)."""
    from novic.checkpoint import CheckpointError, convert_pickled_decoder

    try:
        convert_pickled_decoder(args.old, args.new)
    except (OSError, CheckpointError) as error:
        print(f"novic convert-checkpoint: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.new}", file=sys.stderr)
    return 0


def add_convert_checkpoint(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser(
        "convert-checkpoint",
        help="rewrite an old pickled decoder.pt as a safetensors decoder file (reads tensors "
        "and plain data only: a file carrying code is refused)",
    )
    cmd.add_argument("old", help="the pickled decoder file (novic.decoder/1)")
    cmd.add_argument("new", help="the file to write (may be the same path)")
    cmd.set_defaults(run=convert_checkpoint)


def import_checkpoint(args: argparse.Namespace) -> int:
    """Convert a reference decoder checkpoint into a decoder file (novic.reference)."""
    import json

    from novic.reference import ReferenceFormatError, convert_reference_checkpoint

    try:
        embedder = json.loads(args.embedder) if args.embedder else None
        summary = convert_reference_checkpoint(
            args.reference, args.out, embedder=embedder, nouns_path=args.nouns,
            heads=args.heads, allow_pickle=args.trust_pickle, cache_dir=args.cache_dir,
        )  # fmt: skip
    except json.JSONDecodeError as error:
        print(f"novic import-checkpoint: --embedder is not JSON: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError, ReferenceFormatError) as error:
        print(f"novic import-checkpoint: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out}: {summary['nouns']} nouns, vocabulary {summary['vocab_size']}, "
        f"L={summary['layers']} H={summary['hidden']} P={summary['prefix_tokens']}",
        file=sys.stderr,
    )
    return 0


def add_import_checkpoint(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser(
        "import-checkpoint",
        help="convert a decoder checkpoint of the reference implementation (ovod_chunk*.train "
        "or .model) into this project's decoder file (docs/training.md)",
    )
    cmd.add_argument("reference", help="the reference checkpoint (a path you give)")
    cmd.add_argument("--out", required=True, help="the decoder file to write")
    cmd.add_argument(
        "--embedder",
        metavar="JSON",
        help='this project\'s embedder spec, e.g. \'{"hub": "timm/ViT-B-16-SigLIP"}\' (default: '
        "from the checkpoint's openclip:ORG/NAME); its tokenizer rebuilds the target tokens",
    )
    cmd.add_argument(
        "--nouns", metavar="PARQUET", help="dictionary whose ids the nouns take (default 1..N)"
    )
    cmd.add_argument("--heads", type=positive_int, help="attention heads if the file lacks them")
    cmd.add_argument("--cache-dir", help="Hugging Face cache for the tokenizer")
    cmd.add_argument(
        "--trust-pickle",
        action="store_true",
        help="unpickle fully if the restricted unpickler refuses the file (can run code in it)",
    )
    cmd.set_defaults(run=import_checkpoint)


def serve(args: argparse.Namespace) -> int:
    """Serve a model's web page and JSON API until interrupted (novic.serve)."""
    from novic.serve import MB, Limits, serve_command

    try:
        limits = Limits(
            queue=args.queue, batch=args.batch_size, max_items=args.max_items,
            max_request_bytes=args.max_request_mb * MB, max_image_bytes=args.max_image_mb * MB,
            max_pixels=args.max_pixels, max_beam=args.max_beam,
        )  # fmt: skip
        return serve_command(
            args.model, args.host, args.port, limits, args.gencfg, args.top_k, args.device,
            args.files_root, args.cache_dir, allow_download=args.allow_download,
            trust_pickled=args.trust_pickled_checkpoint,
        )  # fmt: skip
    except (OSError, ValueError, RuntimeError) as error:  # bad model, config or embedder
        print(f"novic serve: {error}", file=sys.stderr)
        return 2


def add_serve(commands: argparse._SubParsersAction) -> None:
    from novic.settings import DEFAULT_GENCFG

    cmd = commands.add_parser(
        "serve", help="a local web page and JSON API (POST /classify) for a trained model"
    )
    cmd.add_argument(
        "--model", required=True, help="decoder checkpoint (results/models/RUN/decoder.pt)"
    )
    cmd.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens the "
        "model, without a login, to every network this machine is on)",
    )
    cmd.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    cmd.add_argument("--gencfg", default=DEFAULT_GENCFG, help="default generation config")
    cmd.add_argument("--top-k", type=positive_int, default=5, help="default nouns per image")
    cmd.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    cmd.add_argument(
        "--files-root",
        metavar="DIR",
        help="let requests name image files (paths or file:// URLs) below DIR (default: off)",
    )
    cmd.add_argument("--queue", type=positive_int, default=16, help="requests that may wait")
    cmd.add_argument("--batch-size", type=positive_int, default=32, help="items per model batch")
    cmd.add_argument("--max-items", type=positive_int, default=16, help="items per request")
    cmd.add_argument("--max-request-mb", type=positive_int, default=20, help="request body cap")
    cmd.add_argument("--max-image-mb", type=positive_int, default=8, help="image file cap")
    cmd.add_argument("--max-pixels", type=positive_int, default=40_000_000, help="image cap")
    cmd.add_argument("--max-beam", type=positive_int, default=50, help="beam width cap")
    add_model_options(cmd)
    cmd.set_defaults(run=serve)


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
    add_convert_checkpoint(commands)
    add_import_checkpoint(commands)
    add_serve(commands)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
