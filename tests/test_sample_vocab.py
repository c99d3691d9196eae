"""tools/sample_vocab.py: seeded samples of a noun table and the score of a judged sample."""

import pytest
from conftest import load_tool

from novic.dictionary import noun_row, noun_table


@pytest.fixture(scope="module")
def tool():
    return load_tool("sample_vocab")


def test_samples_are_seeded_sorted_and_carry_multiplicities(tool):
    # ids in reverse target order: the sample must not depend on the row order
    rows = [noun_row(50 - i, [f"noun{i:02d}"], singulars_freq=[i + 1]) for i in range(50)]
    table = noun_table(reversed(rows))
    first = tool.sample_rows(table, 10, seed=3)
    assert first == tool.sample_rows(table, 10, seed=3)
    assert first != tool.sample_rows(table, 10, seed=4)
    targets = [row["target_noun"] for row in first]
    assert targets == sorted(targets) and len(set(targets)) == 10
    assert all(row["multiplicity"] == int(row["target_noun"][4:]) + 1 for row in first)
    assert len(tool.sample_rows(table, 500, seed=0)) == 50


def test_sample_lines_define_every_synset(tool):
    row = {**noun_row(1, ["dog"]), "synsets": ["dog.n.01", "frank.n.02"], "multiplicity": 13}
    added = {**noun_row(2, ["sports ball"]), "multiplicity": 2}
    lines = tool.sample_lines([row, added], lambda name: name.upper())
    assert lines[0] == ["dog", "dog", "13", "dog.n.01 frank.n.02",
                        "dog.n.01: DOG.N.01 | frank.n.02: FRANK.N.02", ""]  # fmt: skip
    assert lines[1][4] == "(no synset: a class-list name)"


def test_score_counts_judgements(tool, tmp_path):
    path = tmp_path / "sample.tsv"
    marks = ["y", "yes", "b", "n", "", "Y"]
    lines = [f"w{i}\t\t1\t\t\t{mark}\n" for i, mark in enumerate(marks)]
    path.write_text("\t".join(tool.COLUMNS) + "\n" + "".join(lines))
    result = tool.score(path)
    assert result == {
        "picturable": 3,
        "borderline": 1,
        "not": 1,
        "unjudged": 1,
        "precision": 0.6,
        "lenient_precision": 0.8,
    }
    path.write_text("\t".join(tool.COLUMNS) + "\nw\t\t1\t\t\tmaybe\n")
    with pytest.raises(ValueError, match=r"sample.tsv:2: judgement 'maybe'"):
        tool.score(path)
