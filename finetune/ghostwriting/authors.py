"""Which of several authors a text sounds like: the style classifier (style.py) grown to several authors.

One classifier per author, each that author against the other authors, the
other catalogue corpora on this machine and word-shuffled copies of its own
passages: an author outside the catalogue (a writer's own folder) must be
told from the others too, not just from the catalogue. A text is attributed to the author whose classifier is surest of
it, when that one takes it for its author at all (above 0.5), else to none:
a blend of Dick and Austen that sounds like neither counts for neither. The
share attributed to each author is what `assistant report --blend` and
benchmarks/blend.py sweep against the blend's weights.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from corpora import CATALOGUE, Corpus

from .evaluate import split_text
from .style import PASSAGE_CHARS, TRAIN_PASSAGES, StyleClassifier, build_classifier, passages


@dataclass(frozen=True)
class Authors:
    """A style classifier per author; build it with `fit`."""

    classifiers: dict[str, StyleClassifier]
    accuracy: dict[str, dict]  # each classifier's held-out accuracy (style.build_classifier's report)

    @classmethod
    def fit(cls, corpora: Sequence[Corpus], seed: int = 0) -> "Authors":
        """A classifier for each corpus's author, fitted on the first 90% of it (the last tenth held out).

        The other authors' passages (from their first 90%) are its extra references, but for a catalogue
        author: build_classifier has that one among its references already.
        """
        splits = {corpus.name: split_text(corpus) for corpus in corpora}
        classifiers, accuracy = {}, {}
        for name, (train, held_out) in splits.items():
            others = [other for other in splits if other != name and other not in CATALOGUE]
            per_author = TRAIN_PASSAGES // len(splits)
            extra = [p for other in others for p in passages(splits[other][0], PASSAGE_CHARS, per_author, seed)]
            classifiers[name], accuracy[name] = build_classifier(train, held_out, name, extra_reference=extra, seed=seed)
        return cls(classifiers, accuracy)

    def attribute(self, texts: Sequence[str]) -> list[str | None]:
        """The author each text is attributed to, or None for a text no classifier takes for its author."""
        scores = {name: c.scores(texts) for name, c in self.classifiers.items()}
        found: list[str | None] = []
        for i in range(len(texts)):
            name, score = max(((n, s[i]) for n, s in scores.items()), key=lambda pair: pair[1])
            found.append(name if score > 0.5 else None)
        return found

    def shares(self, texts: Sequence[str]) -> dict[str | None, float]:
        """The share of `texts` attributed to each author (and to none, under None)."""
        found = self.attribute(texts)
        return {name: found.count(name) / len(found) for name in [*self.classifiers, None]}
