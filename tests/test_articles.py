"""Indefinite articles: a table of ordinary words and the usual exceptions."""

import pytest

from novic.articles import indefinite_article, with_article

CASES = [
    # plain vowel and consonant letters
    ("apple", "an"),
    ("dog", "a"),
    ("egg", "an"),
    ("igloo", "an"),
    ("orange", "an"),
    ("umbrella", "an"),
    ("udder", "an"),
    ("uncle", "an"),
    ("urn", "an"),
    ("usher", "an"),
    ("upholstery", "an"),
    ("yak", "a"),
    ("house", "a"),
    ("honey", "a"),
    ("Apple pie", "an"),
    # silent h
    ("hour", "an"),
    ("hourglass", "an"),
    ("honest broker", "an"),
    ("honor guard", "an"),
    ("honour", "an"),
    ("heir", "an"),
    ("heiress", "an"),
    # u and eu read "you"
    ("unicorn", "a"),
    ("university", "a"),
    ("uniform", "a"),
    ("union", "a"),
    ("unit", "a"),
    ("unicycle", "a"),
    ("utensil", "a"),
    ("user", "a"),
    ("urinal", "a"),
    ("ukulele", "a"),
    ("uvula", "a"),
    ("European", "a"),
    ("eucalyptus", "a"),
    ("ewe", "a"),
    ("unidentified flying object", "an"),
    ("uninhabited island", "an"),
    # "one" reads "won"
    ("one", "a"),
    ("one-way street", "a"),
    ("onesie", "a"),
    ("onion", "an"),
    ("onerous task", "an"),
    # letters read one by one
    ("X-ray", "an"),
    ("T-shirt", "a"),
    ("U-boat", "a"),
    ("A-frame", "an"),
    ("F-16", "an"),
    ("e-book", "an"),
    ("H-bomb", "an"),
    ("FBI agent", "an"),
    ("MRI scanner", "an"),
    ("UFO", "a"),
    ("SUV", "an"),
    ("LED", "an"),
    ("TV", "a"),
    ("CD player", "a"),
    ("MP3 player", "an"),
    ("iPhone", "an"),
    # capitalised words read as words
    ("NASA probe", "a"),
    ("NATO base", "a"),
    ("IKEA shelf", "an"),
    # numbers
    ("8-ball", "an"),
    ("11-year-old", "an"),
    ("18-wheeler", "an"),
    ("1,800-page book", "a"),
    ("80,000 ton ship", "an"),
    ("2-by-4", "a"),
    ("100-dollar bill", "a"),
    # odd input
    ("", "a"),
    ('"egg" timer', "an"),
    ("ytterbium", "an"),
]


@pytest.mark.parametrize(("phrase", "article"), CASES)
def test_indefinite_article(phrase: str, article: str) -> None:
    assert indefinite_article(phrase) == article


def test_with_article_keeps_the_phrase() -> None:
    assert with_article("owl") == "an owl"
    assert with_article("T-shirt") == "a T-shirt"
