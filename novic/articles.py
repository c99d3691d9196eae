"""Indefinite articles ("a" or "an") by spelling rules, fast enough for every noun variant.

The choice follows the sound of the first word, guessed from its spelling:
- numbers: "an" for 8..., 11, 18 (and 11/18 thousand, million, ...), else "a";
- letters read one by one: a single letter before a hyphen or digit ("an X-ray", "a T-shirt",
  "a U-boat"), initialisms ("an FBI agent", "a UFO"), "iPhone"-style words ("an eBook");
  capitalised words of 4+ letters whose second letter is a vowel read as words ("a NASA probe");
- words: a silent h ("an hour", "an honest man", "an heir"), a u or eu read "you" ("a unicorn",
  "a university", "a utensil", "a European", "a ewe"), "one" ("a one-way street"), else "an"
  before a vowel letter and "a" before a consonant letter.
"""

from __future__ import annotations

import re

_VOWEL_LETTER_NAMES = set("aefhilmnorsx")  # "ay", "ee", "ef", "aitch", ... start with a vowel
_SILENT_H = re.compile(r"^(hour|heir|honest|honou?r|hors\b)")
_YOU_SOUND = re.compile(
    r"^(uni(?![mnd])|u[bcfhjkqrstv][aeiou]|ur[aeiou]|eu|ewe|one(?![a-rt-z])|once\b)"
)
_AN_OTHER = re.compile(r"^yt")  # ytterbium, yttrium
_FIRST_WORD = re.compile(r"[^\s\-/]+")
_NUMBER = re.compile(r"^[\d,]+")


def _number_article(token: str) -> str:
    digits = _NUMBER.match(token).group().replace(",", "")
    if digits.startswith("8"):
        return "an"
    if len(digits) % 3 == 2 and digits[:2] in ("11", "18"):  # eleven, eighteen (thousand, ...)
        return "an"
    return "a"


def _letter_article(letter: str) -> str:
    return "an" if letter.lower() in _VOWEL_LETTER_NAMES else "a"


def indefinite_article(phrase: str) -> str:
    """The indefinite article for `phrase`: "a" or "an"."""
    text = phrase.strip().lstrip("\"'([")
    if not text:
        return "a"
    if text[0].isdigit():
        return _number_article(text)
    match = _FIRST_WORD.match(text)
    word = match.group() if match else text
    letters = re.match(r"[A-Za-z]+", word)
    if letters is None:
        return "a"
    alpha = letters.group()
    end = len(alpha)
    if end == 1 and (end == len(text) or not text[end].isalpha()):
        return _letter_article(alpha)  # "X-ray", "T-shirt", "A4 sheet", "x"
    if alpha[0].islower() and alpha[1].isupper():
        return _letter_article(alpha[0])  # "iPhone", "eBook"
    if alpha.isupper():
        pronounceable = len(alpha) >= 4 and alpha[1] in "AEIOU"
        if not pronounceable:
            return _letter_article(alpha[0])  # "FBI", "MRI", "UFO", "SUV"
    lower = alpha.lower()
    if _SILENT_H.match(lower) or _AN_OTHER.match(lower):
        return "an"
    if _YOU_SOUND.match(lower):
        return "a"
    return "an" if lower[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """`phrase` preceded by its indefinite article: "an apple", "a unicorn"."""
    return f"{indefinite_article(phrase)} {phrase}"
