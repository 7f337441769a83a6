"""The ghostwriting evaluation: what a checkpoint writes, measured the way a writer judges it.

At a checkpoint the model writes K continuations of prompts cut from the
held-out end of its corpus and K unconditional samples, at the sampling
settings the writer uses, and four numbers are taken from them (each share
with its 95% interval, which the choice of checkpoint reads: choice.py):

- copying: the share of samples holding a verbatim span of at least L
  characters of the corpus (the suffix-array index of the memorization check),
  and the mean longest span;
- style: the share of samples a character n-gram classifier attributes to the
  author (style.py; its accuracy on held-out real passages is reported beside it);
- prompt-following: the share of continuations recognisably about their own
  prompt rather than another of the batch (prompting.py; chance is 1/K);
- diversity: distinct word 2- and 3-grams across all the samples.

The same evaluation serves training (through the kind's adapter) and a
trained model (`assistant report`, `assistant compare`), through `Writer`: any
function that continues a list of prompts.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from statistics import fmean

import torch

from contract import loop
from contract.copyguard import CopyGuard
from contract.sampling import Decoder, Sampling
from corpora import Corpus, UserError
from corpora.index import CorpusIndex

from .choice import wilson
from .prompting import distinct, prompt_following
from .style import StyleClassifier, build_classifier, passages

# continuations of these prompts, `chars` characters each: prompts -> texts (unconditional where a prompt is "")
Writer = Callable[[list[str], int, int, Sampling], list[str]]
HELD_OUT = 0.1  # the corpus's last tenth gives the prompts and the classifier's held-out author passages


@dataclass(frozen=True)
class GhostwritingOptions:
    """How the evaluation runs; the finetune flags fill it."""

    samples: int = 16  # K prompted continuations, and K unconditional samples (a run takes its kind's default)
    min_span: int = 50  # L: a sample copying this many characters of the corpus copies
    chars: int = 300  # the length of each sample
    prompt_chars: int = 200
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.8))

    def check(self) -> None:
        if self.samples < 2:
            raise UserError(f"--eval-samples must be at least 2 (prompt-following compares prompts), got {self.samples}")
        if self.min_span < 1 or self.chars < 1:
            raise UserError("--copy-span and the sample length must be at least 1")
        self.sampling.check()


def plain(sampling: Sampling) -> bool:
    """Whether only temperature, top-k and top-p are set: what a kind's own (batched) sampler writes as fast as it can."""
    return replace(sampling, temperature=1.0, top_k=None, top_p=None) == Sampling()


def extra_settings(sampling: Sampling) -> dict:
    """The settings of the chain beyond temperature, top-k and top-p that are not at their default, by name."""
    return {f.name: value for f in fields(Sampling) if f.name not in ("temperature", "top_k", "top_p")
            and (value := getattr(sampling, f.name)) != f.default}


def chain_writer(decoder: Decoder, index: CorpusIndex | None, units: int) -> Writer:
    """A Writer through the generation API's loop (contract.loop), for settings a kind's own sampler lacks: every prompt
    continued by `units` tokens with the whole chain, the copy guard over `index` among them."""
    def write(prompts: list[str], chars: int, seed: int, sampling: Sampling) -> list[str]:
        if sampling.max_copy is not None and index is None:
            raise UserError("--max-copy needs the corpus index, and there is none: the copy guard checks samples against it")
        texts = []
        for i, prompt in enumerate(prompts):
            guard = None if sampling.max_copy is None else CopyGuard(index, sampling.max_copy, decoder.token_texts())
            written = loop.tokens(decoder, prompt, sampling, torch.Generator().manual_seed(seed + i), guard=guard)
            texts.append("".join(token.text for token in itertools.islice(written, units)))
        return texts
    return write


def split_text(corpus: Corpus) -> tuple[str, str]:
    """The corpus as the author's text for fitting and the held-out end (prompts, held-out passages)."""
    text = "\n\n".join(d.text for d in corpus.documents)
    cut = int(len(text) * (1 - HELD_OUT))
    return text[:cut], text[cut:]


class Ghostwriting:
    """The evaluation of one model's checkpoints: its prompts, its classifier and its corpus index, made once."""

    def __init__(self, corpus: Corpus, index: CorpusIndex | None, options: GhostwritingOptions, seed: int,
                 base_samples: list[str] | None = None):
        self.options = options
        self.seed = seed
        self.index = index
        train, held_out = split_text(corpus)
        self.prompts = [p[: options.prompt_chars] for p in passages(held_out, options.prompt_chars, options.samples, seed)]
        self.classifier: StyleClassifier | None = None
        self.style_note: str | None = None
        self.style_accuracy: dict | None = None
        try:
            self.classifier, self.style_accuracy = build_classifier(train, held_out, corpus.name, base_samples or [], seed)
        except UserError as e:
            self.style_note = str(e)

    def describe(self) -> dict:
        """What a report needs to read the figures: the settings and how far the style score can be trusted."""
        s = self.options.sampling
        return {"samples": self.options.samples, "min_span": self.options.min_span, "chars": self.options.chars,
                "prompts": len(self.prompts), "temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p,
                "chain": extra_settings(s),
                "style_accuracy": self.style_accuracy, "style_note": self.style_note}

    def evaluate(self, write: Writer, seed: int | None = None) -> dict:
        """The four figures for what `write` produces now."""
        k = len(self.prompts)  # fewer than asked for when the held-out text is short (none under 200 characters)
        texts = write([*self.prompts, *[""] * self.options.samples], self.options.chars,
                      self.seed if seed is None else seed, self.options.sampling)
        return self.figures(texts[:k], texts[k:])

    def figures(self, continuations: list[str], unconditional: list[str]) -> dict:
        texts = continuations + unconditional
        figures: dict = {"prompt_following": prompt_following(self.prompts, continuations),
                         "distinct_2": distinct(texts, 2), "distinct_3": distinct(texts, 3),
                         "style": self.classifier.author_share(texts) if self.classifier else None}
        if self.index is not None:
            spans = [s.length if (s := self.index.longest_span(t)) else 0 for t in texts]
            figures["copying"] = sum(s >= self.options.min_span for s in spans) / len(spans)
            figures["copied_span"] = fmean(spans)
        else:
            figures["copying"] = figures["copied_span"] = None
        figures = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}
        # each share with its 95% interval: copying and style are shares of every sample, prompt-following of the prompts
        trials = {"copying": len(texts), "style": len(texts), "prompt_following": len(continuations)}
        figures.update({f"{k}_ci": list(wilson(figures[k], n)) for k, n in trials.items() if figures[k] is not None})
        return figures

