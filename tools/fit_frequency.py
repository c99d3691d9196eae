"""Fit the noun stage's frequency knobs to the Google Web 1T counts the reference used.

    python tools/fit_frequency.py [--dict-dir /usr/share/wordnet]

Prints, for WordNet's noun lemmas:
- nouns.frequency_scale: the median Web 1T / wordfreq ratio (both relative to "the") of the
  single-word lemmas, overall and per decade of frequency;
- nouns.phrase_penalty: the constant factor between wordfreq's phrase estimate (times the
  scale) and the Web 1T bigram frequency of the two-word lemmas, fitted by maximum likelihood
  with a log-normal error, where a bigram missing from the table counts as below its cut
  (a censored, "Tobit" fit); and the fit with a penalty that grows with the estimate.
Web 1T counts are Norvig's count_1w/count_2w as shipped by the wordsegment package.
"""

import argparse
import importlib.resources
import math
import statistics

import torch
import wordfreq

from novic.frequency import web1t_bigrams
from novic.wordnet import open_wordnet


def web1t_unigrams() -> dict[str, float]:
    text = (importlib.resources.files("wordsegment") / "unigrams.txt").read_text("utf-8")
    counts = dict(line.split("\t") for line in text.splitlines())
    the = float(counts["the"])
    return {word: float(count) / the for word, count in counts.items()}


def censored_fit(x: torch.Tensor, y: torch.Tensor, seen: torch.Tensor, cut: float, slope: bool):
    """Max-likelihood log10 y = a + b log10 x (b = 1 unless `slope`), y censored below `cut`."""
    params = torch.tensor([-3.0, 1.0, 0.0], dtype=torch.float64, requires_grad=True)

    def loss() -> torch.Tensor:
        a, b, log_sigma = params
        sigma = log_sigma.exp()
        mean = a + (b if slope else 1.0) * x
        normal = torch.distributions.Normal(mean, sigma)
        observed = normal.log_prob(y)
        below = torch.special.log_ndtr((cut - mean) / sigma)
        return -torch.where(seen, observed, below).sum()

    optimizer = torch.optim.LBFGS([params], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss()
        value.backward()
        return value

    optimizer.step(closure)
    a, b, log_sigma = params.detach().tolist()
    return a, (b if slope else 1.0), math.exp(log_sigma)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dict-dir", default="/usr/share/wordnet")
    args = parser.parse_args()
    with open_wordnet("auto", args.dict_dir) as wn:
        names = {lemma.replace("_", " ") for lemma in wn.reader.all_lemma_names("n")}
    unigrams = web1t_unigrams()
    bigrams, floor = web1t_bigrams()
    the = wordfreq.word_frequency("the", "en")

    ratios: dict[int, list[float]] = {}
    for name in names:
        tokens = wordfreq.tokenize(name, "en")
        ours = wordfreq.word_frequency(name, "en") / the
        if len(tokens) == 1 and ours > 1e-6 and tokens[0] in unigrams:
            decade = math.floor(math.log10(ours))
            ratios.setdefault(decade, []).append(math.log10(unigrams[tokens[0]] / ours))
    every = [r for values in ratios.values() for r in values]
    scale = 10 ** statistics.median(every)
    print(f"frequency_scale: median Web 1T / wordfreq over {len(every)} words = {scale:.2f}")
    for decade in sorted(ratios):
        values = ratios[decade]
        print(f"  wordfreq 1e{decade}: {len(values)} words, {10 ** statistics.median(values):.2f}")

    estimates, observed = [], []
    for name in names:
        tokens = wordfreq.tokenize(name, "en")
        ours = wordfreq.word_frequency(name, "en") / the * scale
        if len(tokens) == 2 and ours > 0:
            estimates.append(math.log10(ours))
            observed.append(bigrams.get(" ".join(t.replace("'", "") for t in tokens), 0.0))
    x = torch.tensor(estimates, dtype=torch.float64)
    seen = torch.tensor([o > 0 for o in observed])
    y = torch.tensor([math.log10(o) if o > 0 else 0.0 for o in observed], dtype=torch.float64)
    cut = math.log10(floor)
    print(f"two-word lemmas: {len(x)}, {int(seen.sum())} in the bigram table (cut {floor:.2g})")
    a, _, sigma = censored_fit(x, y, seen, cut, slope=False)
    print(f"phrase_penalty: {10**-a:.0f} (log10 spread {sigma:.2f})")
    a, b, sigma = censored_fit(x, y, seen, cut, slope=True)
    print(f"with a slope: log10 bigram = {a:.2f} + {b:.2f} log10 estimate (spread {sigma:.2f})")


if __name__ == "__main__":
    main()
