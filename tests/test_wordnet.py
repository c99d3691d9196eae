"""Opening WordNet from Debian's dict directory, and the errors when there is none."""

from pathlib import Path

import pytest

from novic.wordnet import LEXNAMES, WordNetNotFound, find_nltk_corpus, lexnames_text, open_wordnet

DEBIAN_DICT = Path("/usr/share/wordnet")
needs_debian_wordnet = pytest.mark.skipif(
    not (DEBIAN_DICT / "data.noun").exists(),
    reason="Debian's wordnet-base is not installed (make test installs it)",
)


def test_lexnames_file_matches_the_manual_page():
    lines = lexnames_text().splitlines()
    assert len(lines) == len(LEXNAMES) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[3] == "03\tnoun.Tops\t1"
    assert lines[17] == "17\tnoun.object\t1"
    assert lines[29] == "29\tverb.body\t2"
    assert lines[44] == "44\tadj.ppl\t3"


@needs_debian_wordnet
def test_open_debian_dict_directory():
    with open_wordnet("dict", DEBIAN_DICT) as wn:
        assert wn.version == "3.0"
        assert "dict directory" in wn.source
        dog = wn.reader.synset("dog.n.01")
        assert dog.lexname() == "noun.animal"
        assert "mouse" in wn.reader._exception_map["n"]["mice"]


def test_missing_dict_directory_names_both_fixes(tmp_path):
    with pytest.raises(WordNetNotFound) as error, open_wordnet("dict", tmp_path / "nowhere"):
        pass
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message
    assert "nltk.downloader wordnet31" in message
    assert "apt-get install wordnet-base wordnet-sense-index" in message


def test_incomplete_dict_directory_lists_missing_files(tmp_path):
    (tmp_path / "data.noun").write_text("")
    with pytest.raises(WordNetNotFound, match=r"missing data\.verb"):
        open_wordnet("dict", tmp_path).__enter__()


@pytest.mark.skipif(find_nltk_corpus() is not None, reason="an nltk WordNet corpus is installed")
def test_nltk_source_without_corpus_says_how_to_fix():
    with pytest.raises(WordNetNotFound, match="no nltk WordNet corpus"), open_wordnet("nltk"):
        pass


def test_unknown_source():
    with pytest.raises(ValueError, match=r"nouns\.wordnet\.source"), open_wordnet("web"):
        pass


@needs_debian_wordnet
def test_cli_shows_a_synset_its_rules_and_whether_it_is_selected(capsys):
    from novic.cli import main

    rules = Path(__file__).resolve().parent.parent / "resources/synset_rules.txt"
    assert main(["synset", "kitten.n.01", "--rules", str(rules), "--source", "dict"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kitten.n.01  [noun.animal]  WordNet 3.0")
    assert "IY animal.n.01" in out and "subtree: 0 synsets" in out
    assert out.rstrip().endswith("  selected with the default nouns.lexnames and nouns.instances")
    assert main(["synset", "platalea.n.01", "--rules", str(rules), "--source", "dict"]) == 0
    assert "  not selected with" in capsys.readouterr().out  # a genus
    assert main(["synset", "no_such.n.01", "--rules", "", "--source", "dict"]) == 2
