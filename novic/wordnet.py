"""Open WordNet through nltk: an installed nltk corpus, or a Princeton-format dict directory.

Debian's `wordnet-base` ships the WordNet 3.0 database in /usr/share/wordnet but not in the
layout nltk reads: nltk wants the files under `<root>/corpora/wordnet/`, refuses paths that
leave that root (so no symlinks), and needs a `lexnames` file that Debian does not ship.
`open_wordnet` builds that layout in a temporary directory when no nltk corpus is installed.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nltk
from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader

# The 45 lexicographer files in WordNet's fixed order (lexnames(5WN)).
LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}

# Files nltk's reader opens; index.sense comes from Debian's wordnet-sense-index.
REQUIRED_FILES = [f"{kind}.{pos}" for kind in ("data", "index") for pos in _POS_NUMBER] + [
    f"{pos}.exc" for pos in _POS_NUMBER
]
OPTIONAL_FILES = ["index.sense", "cntlist.rev"]
NLTK_CORPORA = ("wordnet31", "wordnet")

FIX_HINT = (
    "Fix it in one of two ways: install nltk's corpus (python -m nltk.downloader wordnet31), "
    "or install Debian's WordNet (apt-get install wordnet-base wordnet-sense-index) and set "
    "nouns.wordnet.source: dict with nouns.wordnet.dict_dir pointing at it "
    "(default /usr/share/wordnet)."
)


class WordNetNotFound(RuntimeError):
    """No usable WordNet: the message says which sources were tried and how to fix it."""


@dataclass(frozen=True)
class WordNet:
    """An open WordNet reader and a description of where it came from."""

    reader: WordNetCorpusReader
    version: str
    source: str


def lexnames_text() -> str:
    """The `lexnames` file content: `NN<TAB>name<TAB>pos` per line."""
    return "".join(
        f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES)
    )


class _Reader(WordNetCorpusReader):
    """nltk's reader without the Open Multilingual WordNet mapping, which this project does not
    use and which costs nltk about 15 s at start-up (it parses index.sense twice)."""

    def map_wn(self, version: str = "wordnet") -> None:
        return None


def _quiet_reader(root: object) -> WordNetCorpusReader:
    with warnings.catch_warnings():  # "multilingual functions are not available": expected
        warnings.simplefilter("ignore", UserWarning)
        return _Reader(root, None)


def sense_counts(reader: WordNetCorpusReader) -> dict[str, int]:
    """Tagged-corpus usage count per sense key (from cntlist.rev; empty if it is absent).

    nltk's Lemma.count() binary-searches the file on every call; reading it once is ~100x faster.
    """
    try:
        stream = reader.open("cntlist.rev")
    except OSError:
        return {}
    counts = {}
    with stream:
        for line in stream:
            key, _, count = line.split()
            counts[key] = int(count)
    return counts


def find_nltk_corpus() -> tuple[str, object] | None:
    """The first installed nltk WordNet corpus (name, root), or None."""
    for name in NLTK_CORPORA:
        try:
            return name, nltk.data.find(f"corpora/{name}")
        except LookupError:
            continue
    return None


def build_nltk_layout(dict_dir: Path, root: Path) -> Path:
    """Copy a Princeton dict directory into nltk's layout under `root`; return the corpus dir."""
    missing = [f for f in REQUIRED_FILES if not (dict_dir / f).is_file()]
    if missing:
        raise WordNetNotFound(
            f"{dict_dir} is not a WordNet dict directory (missing {', '.join(missing)}). "
            + FIX_HINT
        )
    corpus = root / "corpora" / "wordnet"
    corpus.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        if (dict_dir / name).is_file():
            shutil.copyfile(dict_dir / name, corpus / name)
    if not (corpus / "index.sense").exists():
        # nltk reads it only for sense keys and counts; an empty one keeps those lookups empty.
        (corpus / "index.sense").touch()
    if (dict_dir / "lexnames").is_file():
        shutil.copyfile(dict_dir / "lexnames", corpus / "lexnames")
    else:
        (corpus / "lexnames").write_text(lexnames_text(), encoding="ascii")
    return corpus


@contextlib.contextmanager
def open_wordnet(
    source: str = "auto", dict_dir: str | Path = "/usr/share/wordnet"
) -> Iterator[WordNet]:
    """Open WordNet from `source` ("nltk", "dict" or "auto": nltk if installed, else dict)."""
    if source not in ("auto", "nltk", "dict"):
        raise ValueError(f"nouns.wordnet.source: unknown source {source!r} (auto, nltk or dict)")
    if source in ("auto", "nltk"):
        found = find_nltk_corpus()
        if found:
            name, root = found
            reader = _quiet_reader(root)
            yield WordNet(reader, reader.get_version(), f"nltk corpus {name} ({root})")
            return
        if source == "nltk":
            raise WordNetNotFound(f"no nltk WordNet corpus ({', '.join(NLTK_CORPORA)}). {FIX_HINT}")
    dict_dir = Path(dict_dir)
    if not dict_dir.is_dir():
        tried = "no nltk WordNet corpus installed, and " if source == "auto" else ""
        raise WordNetNotFound(f"{tried}no WordNet dict directory at {dict_dir}. {FIX_HINT}")
    with tempfile.TemporaryDirectory(prefix="novic-wordnet-") as tmp:
        build_nltk_layout(dict_dir, Path(tmp))
        # nltk only reads corpora under a directory on its search path.
        nltk.data.path.insert(0, tmp)
        try:
            reader = _quiet_reader(nltk.data.find("corpora/wordnet", paths=[tmp]))
            yield WordNet(reader, reader.get_version(), f"dict directory {dict_dir}")
        finally:
            nltk.data.path.remove(tmp)


def parents(synset: Synset) -> list[Synset]:
    """A synset's hypernyms and instance hypernyms: the links the synset rules inherit along."""
    return synset.hypernyms() + synset.instance_hypernyms()


def lemma_senses(
    reader: WordNetCorpusReader, counts: dict[str, int], lemma_name: str
) -> list[tuple[str, int]]:
    """Every sense of a lemma name in every part of speech: (synset name, usage count)."""
    senses = []
    key = lemma_name.lower()
    for pos, offsets in reader._lemma_pos_offset_map.get(key, {}).items():
        for offset in offsets:
            synset = reader.synset_from_pos_and_offset(pos, offset)
            count = sum(
                counts.get(lemma.key(), 0)
                for lemma in synset.lemmas()
                if lemma.name().lower() == key
            )
            senses.append((synset.name(), count))
    return senses
