"""tools/judge_vocab.py: judging chunks of a vocabulary, and decisions applied to the resources."""

from pathlib import Path

import pytest
from conftest import load_tool

from novic.dictionary import noun_row, noun_table
from novic.frequency import read_homographs
from novic.synsets import parse_rules

WORDNET = Path("/usr/share/wordnet")
needs_wordnet = pytest.mark.skipif(not WORDNET.is_dir(), reason="Debian's wordnet-base missing")
HEADER = "noun\tverdict\taction\twhy\n"


@pytest.fixture(scope="module")
def tool():
    return load_tool("judge_vocab")


def decisions(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_decisions_keep_the_lowest_share_and_every_reason(tool, tmp_path):
    first = decisions(
        tmp_path, "d1.tsv",
        "pass\tb\tshare pass 0.05\tmostly the verb",
        "hitch\tb\tshare hitch 0.02 ; exclude hindrance.n.02\tmostly the problem",
        "dog\ty\tkeep\t",
    )  # fmt: skip
    second = decisions(
        tmp_path, "d2.tsv",
        "mountain pass\ty\tshare pass 0.01\tthe pass as a word",
        "flesh\tb\tdrop flesh\tnever the whole body",
    )  # fmt: skip
    found = tool.read_decisions([first, second])
    assert found.verdicts == {"pass": "b", "hitch": "b", "dog": "y", "mountain pass": "y",
                              "flesh": "b"}  # fmt: skip
    assert found.shares == {"pass": (0.01, "mountain pass: the pass as a word"),
                            "hitch": (0.02, "mostly the problem")}  # fmt: skip
    assert found.drops == {"flesh": "never the whole body"}
    assert found.excludes == {"hindrance.n.02": "hitch: mostly the problem"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dog\tmaybe\tkeep\t", "verdict 'maybe' is not y, b or n"),
        ("dog\tb\tshare dog 2\tx", "expected 'share FORM X' with X in"),
        ("dog\tb\tshare dog\tx", "expected 'share FORM X' with X in"),
        ("dog\tb\trename dog\tx", "unknown action 'rename dog'"),
    ],
)
def test_a_malformed_decision_names_file_and_line(tool, tmp_path, line, message):
    path = decisions(tmp_path, "bad.tsv", "cat\ty\tkeep\t", line)
    with pytest.raises(ValueError, match=rf"bad\.tsv:3: .*{message}"):
        tool.read_decisions([path])


@needs_wordnet
def test_apply_appends_new_entries_and_reports_conflicts(tool, tmp_path):
    homographs = tmp_path / "homographs.txt"
    homographs.write_text("need  0  # the verb\n", encoding="utf-8")
    rules = tmp_path / "rules.txt"
    rules.write_text("I person.n.01\nY dermatologist.n.01\n", encoding="utf-8")
    path = decisions(
        tmp_path, "d.tsv",
        "pass\tb\tshare pass 0.05\tmostly the verb",
        "need\tn\tshare need 0.01\tthe verb",
        "flesh\tb\tdrop flesh\tnever the whole body",
        "souvenir\tb\texclude keepsake.n.01\tknown by its history",
        "day labourer\tb\texclude day_laborer.n.01\tno visible sign",
        "dermatologist\tb\texclude dermatologist.n.01\tno visible sign",
    )  # fmt: skip
    conflicts = tool.apply(tool.read_decisions([path]), "Judged", homographs, rules, str(WORDNET))
    assert sorted(conflicts) == ["dermatologist.n.01: has a rule already", "need: listed already"]
    assert read_homographs(homographs) == {"need": 0.0, "pass": 0.05, "flesh": None}
    got = parse_rules(rules)
    assert got["keepsake.n.01"].tags == {"E"} and got["day_laborer.n.01"].tags == {"E"}
    assert got["dermatologist.n.01"].tags == {"Y"}  # left for a person to settle
    text = rules.read_text()
    assert text.index("day_laborer.n.01") < text.index("# Things") < text.index("keepsake.n.01")


@needs_wordnet
def test_chunks_show_own_and_other_senses(tool, tmp_path):
    rows = [
        {**noun_row(1, ["drill"], plurals=["drills"], singulars_freq=[6], plurals_freq=[5]),
         "synsets": ["drill.n.01"]},
        {**noun_row(2, ["kitten"], singulars_freq=[5]), "synsets": ["kitten.n.01"]},
    ]  # fmt: skip
    paths = tool.write_chunks(noun_table(rows), 2, tmp_path / "out", {"kitten"}, str(WORDNET))
    assert [p.name for p in paths] == ["chunk1.txt", "chunk2.txt"]
    block = paths[0].read_text()
    assert block.startswith("## drill  (multiplicity 11; forms: drill=6, drills=5)")
    assert "  OWN drill.n.01 [tagged" in block and "(is a tool.n.01)" in block
    assert "  other bore.v.02 [tagged" in block  # the verb the word mostly is
    assert "already in homographs.txt: drill" in block
    assert "kitten" not in paths[0].read_text() + paths[1].read_text()
