"""Does a sample sound like the author? A character n-gram classifier, the author against other writing.

Character 2-5-grams weighted by TF-IDF catch what an author's prose is made of below the level of
meaning: spelling, punctuation, favourite words and word endings, and, because the n-grams run across
the spaces between words ("he said", "d. Th"), the way words follow one another. A linear model on them
tells an author from other authors at well over 95% on passages of a few hundred characters, so the
share of a checkpoint's samples it attributes to the author is a style score that can be trusted as far
as the held-out accuracy reported next to it.

Vocabulary alone would already separate Philip K. Dick from Jane Austen, and then a checkpoint that
strings the author's words together in any order would score as well as the author. So `fit` also
shows the model word-shuffled copies of the author's passages as "not the author": the only way to
tell those apart from the real ones is the word-crossing n-grams (order, punctuation, capitals after
a full stop), and the model learns to ask for them. Trained on Dick against Austen and Shakespeare
without shuffled copies, it attributed every word-shuffled held-out Dick passage to Dick; with a tenth as
many shuffled copies as author passages, 10% of them; with a third, none, at no cost in accuracy.
"""

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import SGDClassifier

from corpora import CATALOGUE, UserError, load_corpus

# Passages scored and trained on: about the length of a sample, long enough for a sure verdict.
PASSAGE_CHARS = 400
# Training passages per side (author; all references together): enough for >95%, fitted in a few seconds.
TRAIN_PASSAGES = 1000
HELD_OUT_PASSAGES = 200
# Fewer author passages than this and a held-out accuracy would say little: about 8,000 characters.
MIN_AUTHOR_PASSAGES = 20
# Word-shuffled author passages added as negatives, per author passage (see the module docstring).
SHUFFLED_SHARE = 1 / 3
# A catalogue corpus used as a reference is cut like a char model's corpus: passages for fitting come from
# its first 90%, held-out ones from the rest.
TRAIN_FRACTION = 0.9
# A reference corpus holding the author's own text (a writer's manuscript taken from a catalogue novel) is left out:
# it shares SHARED_OPENINGS sentences or more with the author's text, each the same for its first OPENING characters.
# A 20,000-character manuscript (the least to train on) has some 200 sentences; two writers share an opening that
# long by chance almost never.
OPENING = 80
SHARED_OPENINGS = 5
_OPENING = re.compile(rf"(?<=[.!?] )[^ ].{{{OPENING - 1}}}")


def passages(text: str, length: int, count: int, seed: int) -> list[str]:
    """Up to `count` passages of `length` characters or a little more, from `text`, in text order.

    The text is cut into consecutive passages that start at a word and stop at the first space after
    `length` characters, from a seeded offset, and `count` of them are picked with the same seed: the
    same seed gives the same passages, different seeds different cuts. Passages never overlap, so a
    held-out set drawn from one part of a text shares nothing with a training set drawn from another.
    A text shorter than `length` gives none; a longer one without spaces, one passage.
    """
    if length < 1:
        raise ValueError(f"passage length must be positive, not {length}")
    rng = random.Random(seed)
    pattern = re.compile(rf"(?<!\S)\S.{{{length - 1},}}?(?<=\S)(?=\s|\Z)", re.DOTALL)
    cut = [m.group() for m in pattern.finditer(text, rng.randrange(length))]
    if len(cut) <= count:
        return cut
    return [cut[i] for i in sorted(rng.sample(range(len(cut)), count))]


def shuffle_words(text: str, seed: int) -> str:
    """The words of `text` in a seeded random order, one space apart: its vocabulary without its order."""
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


@dataclass(frozen=True)
class StyleClassifier:
    """Author passages against everything else, on character 2-5-gram TF-IDF; build it with `fit`."""

    vectorizer: TfidfVectorizer
    model: SGDClassifier

    @classmethod
    def fit(cls, author: Sequence[str], reference: Sequence[str], seed: int = 0) -> "StyleClassifier":
        """Trained on `author` passages against `reference` passages and word-shuffled author passages.

        The features keep case (a capital after a full stop is order; a capital mid-sentence is not) and
        span word boundaries (analyzer "char" rather than "char_wb"), which is what lets the model tell the
        author's text from the same words shuffled. The analyzer folds every run of whitespace into one space,
        so the shuffled copies' single spaces give nothing away and line breaks are no feature. min_df and
        max_features drop the rare n-grams that only name a character of one book. The linear model is
        logistic regression by SGD, as accurate here as liblinear's and several times faster; even so,
        counting the n-grams takes most of the time.
        """
        if not author or not reference:
            raise ValueError("a style classifier needs author and reference passages")
        rng = random.Random(seed)
        chosen = rng.sample(list(author), max(1, round(len(author) * SHUFFLED_SHARE)))
        shuffled = [shuffle_words(p, rng.randrange(2**32)) for p in chosen]
        negatives = [*reference, *shuffled]
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(2, 5), sublinear_tf=True, lowercase=False,
                                     min_df=2, max_features=50_000, dtype=np.float32)
        features = vectorizer.fit_transform([*author, *negatives])
        labels = np.array([1] * len(author) + [0] * len(negatives))
        model = SGDClassifier(loss="log_loss", alpha=1e-5, class_weight="balanced", max_iter=100, tol=1e-4,
                              random_state=seed)
        model.fit(features, labels)
        return cls(vectorizer, model)

    def scores(self, texts: Sequence[str]) -> list[float]:
        """The probability that each text is the author's (above 0.5: attributed to the author)."""
        if not texts:
            return []
        return [float(p) for p in self.model.predict_proba(self.vectorizer.transform(texts))[:, 1]]

    def author_share(self, texts: Sequence[str]) -> float:
        """The share of `texts` attributed to the author: the style score of a set of samples."""
        if not texts:
            raise ValueError("author_share of no texts")
        return sum(s > 0.5 for s in self.scores(texts)) / len(texts)

    def accuracy(self, author_held_out: Sequence[str], reference_held_out: Sequence[str]) -> dict[str, float | int | None]:
        """How often held-out passages get the right side, per side and overall: what the scores are worth.

        A side with no passages has accuracy None (it was not measured, which is not the same as 0).
        """
        author_right = sum(s > 0.5 for s in self.scores(author_held_out))
        reference_right = sum(s <= 0.5 for s in self.scores(reference_held_out))
        total = len(author_held_out) + len(reference_held_out)
        return {
            "author": author_right / len(author_held_out) if author_held_out else None,
            "reference": reference_right / len(reference_held_out) if reference_held_out else None,
            "overall": (author_right + reference_right) / total if total else None,
            "author_passages": len(author_held_out),
            "reference_passages": len(reference_held_out),
        }


def build_classifier(author_train_text: str, author_heldout_text: str, author_name: str,
                     extra_reference: Sequence[str] = (), seed: int = 0) -> tuple[StyleClassifier, dict]:
    """A classifier for one author against the other catalogue corpora on this machine, and its held-out accuracy.

    References are the catalogue corpora found locally (never downloaded), less the author's own when
    `author_name` is a catalogue name, plus `extra_reference` (a base model's own samples, say, so that
    sounding like the base model does not count as sounding like the author). Every fifth extra text is
    held out for the accuracy report. A reference corpus holding the author's own text is left out (and
    named in the report): classified against itself, the author's held-out passages scored 68% instead of
    over 95%. Raises UserError when there is nothing to compare the author with, or too little of the
    author to learn from.
    """
    author = passages(author_train_text, PASSAGE_CHARS, TRAIN_PASSAGES, seed)
    if len(author) < MIN_AUTHOR_PASSAGES:
        raise UserError(
            f"too little text by {author_name} to learn its style: {len(author)} passages of {PASSAGE_CHARS} characters, "
            f"need {MIN_AUTHOR_PASSAGES}"
        )
    author_held_out = passages(author_heldout_text, PASSAGE_CHARS, HELD_OUT_PASSAGES, seed + 1)
    corpora_texts = _reference_texts(author_name)
    own = openings(author_train_text + "\n" + author_heldout_text)
    shared = [name for name, text in corpora_texts.items() if len(own & openings(text)) >= SHARED_OPENINGS]
    corpora_texts = {name: text for name, text in corpora_texts.items() if name not in shared}
    if not corpora_texts and not extra_reference:
        raise UserError(
            f"no reference text to measure {author_name}'s style against: none of the other catalogue corpora "
            f"({', '.join(n for n in CATALOGUE if n != author_name)}) is on this machine; set ASSISTANT_CORPORA"
        )
    reference: list[str] = []
    reference_held_out: list[str] = []
    for text in corpora_texts.values():
        cut = int(len(text) * TRAIN_FRACTION)
        reference += passages(text[:cut], PASSAGE_CHARS, TRAIN_PASSAGES // len(corpora_texts), seed)
        reference_held_out += passages(text[cut:], PASSAGE_CHARS, HELD_OUT_PASSAGES // len(corpora_texts), seed + 1)
    reference += [t for i, t in enumerate(extra_reference) if i % 5 != 4]
    reference_held_out += [t for i, t in enumerate(extra_reference) if i % 5 == 4]
    classifier = StyleClassifier.fit(author, reference, seed)
    report = classifier.accuracy(author_held_out, reference_held_out)
    if author_held_out:
        report["shuffled_author_share"] = classifier.author_share([shuffle_words(p, seed) for p in author_held_out])
    report["reference_corpora"] = list(corpora_texts)
    report["left_out_references"] = shared
    report["extra_reference"] = len(extra_reference)
    return classifier, report


def openings(text: str) -> set[str]:
    """The first OPENING characters of each sentence of `text`, its spaces and line breaks as single spaces."""
    return set(_OPENING.findall(" ".join(text.split())))


def _reference_texts(author_name: str) -> dict[str, str]:
    """The text of each catalogue corpus on this machine other than the author's, by name."""
    texts = {}
    for name in CATALOGUE:
        if name == author_name:
            continue
        try:
            corpus = load_corpus(name, allow_download=False)
        except UserError:
            continue
        texts[name] = "\n\n".join(d.text for d in corpus.documents)
    return texts
