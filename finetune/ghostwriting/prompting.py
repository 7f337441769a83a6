"""Does a continuation follow its prompt, and do the samples differ from each other?

Prompt-following is measured as recognition within a batch: a continuation
follows its prompt when it shares more content words (words of three letters
or more that are not English stop words) with its own prompt than with any
other prompt of the batch. The score is the share of continuations that do,
so it reads against chance, 1/K for a batch of K prompts: a model that ignores
its prompt (one writing a memorized passage, say) scores near chance, a model
that carries the prompt's names and subjects forward scores well above it. On
real text (the author's own continuation of each prompt) it is high; with the
continuations shuffled among the prompts it falls to chance (tests/test_ghostwriting.py).

Overlap is counted as the share of the prompt's content words the continuation
uses again, so a long prompt is not favoured over a short one. A continuation
sharing no content word with any prompt follows none.

Diversity is distinct-n: the share of the samples' word n-grams that are
different (1.0: no n-gram repeats; a model stuck in a loop or writing the
same passage for every prompt scores low).
"""

import re

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if len(w) >= 3 and w not in ENGLISH_STOP_WORDS}


def prompt_following(prompts: list[str], continuations: list[str]) -> float | None:
    """The share of continuations more about their own prompt than about any other of the batch; None under 2 prompts."""
    if len(prompts) < 2:
        return None
    prompt_words = [content_words(p) for p in prompts]
    followed = 0
    for i, continuation in enumerate(continuations):
        words = content_words(continuation)
        overlap = [len(words & p) / len(p) if p else 0.0 for p in prompt_words]
        own = overlap[i]
        followed += own > 0 and all(own > other for j, other in enumerate(overlap) if j != i)
    return followed / len(continuations)


def distinct(texts: list[str], n: int) -> float | None:
    """Distinct-n over all the texts: different word n-grams / all word n-grams; None when there are none."""
    grams = [tuple(words[i : i + n]) for text in texts for words in [WORD.findall(text.lower())]
             for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None
