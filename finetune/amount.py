"""Is there enough text? Said before a run starts and again when it ends, in words a writer acts on.

A model trained from random weights on a short story learns nothing it can
write with: on 1,065 characters, training only made the validation loss
worse, the step-0 weights were kept as the model, and it wrote noise. Below
about 20,000 characters (a long short story) a char model learns letter
frequencies at best; a model with many more parameters than the text has
characters learns the text by heart instead of the author's way of writing.
A validation split of a few hundred characters, for its part, is too short
for its loss to say which checkpoint is better.

A pretrained base (GPT-2) needs no minimum to start from: it already writes
English, and fine-tuning on a page still moves it towards the page.
"""

from dataclasses import dataclass

MIN_SCRATCH_CHARS = 20_000
MAX_PARAMETERS_PER_CHAR = 30  # a 3x1024 char-LSTM (21M) on all of PKD (780k characters) is 27: fine on a GPU
MIN_VAL_CHARS = 2_000


@dataclass(frozen=True)
class TextAmounts:
    """How much text a run learns from and is judged on, against how much model."""

    train_chars: int
    val_chars: int
    parameters: int
    from_scratch: bool


def before_training(a: TextAmounts) -> list[str]:
    """Warnings to read before the first step; empty when the corpus suits the model."""
    warnings = []
    if a.from_scratch and a.train_chars < MIN_SCRATCH_CHARS:
        warnings.append(
            f"Warning: {a.train_chars:,} characters of training text is too little to train a model from scratch: "
            f"it needs at least {MIN_SCRATCH_CHARS:,} (a long short story), better 100,000 or more. Add text, or "
            "fine-tune GPT-2 (--model gpt2), which already writes English.")
    elif a.from_scratch and a.parameters > MAX_PARAMETERS_PER_CHAR * a.train_chars:
        warnings.append(
            f"Warning: the model has {a.parameters:,} parameters for {a.train_chars:,} characters of text: it will "
            "learn the text by heart rather than the way it is written. Pick a smaller --size, or add text.")
    if a.val_chars < MIN_VAL_CHARS:
        warnings.append(
            f"Warning: the validation split is only {a.val_chars:,} characters, too few for its loss to mean much "
            f"(it wants {MIN_VAL_CHARS:,} or more): add text.")
    return warnings


def after_training(steps: int, best_step: int | None, name: str) -> list[str]:
    """What to do when training never beat the starting weights: the model kept is the untrained one."""
    if steps == 0 or best_step != 0:
        return []
    return [
        "Warning: the model did not learn. Validation loss was never better than before training (step 0), so the "
        "weights kept as the model are the ones it started from (random ones write noise; a base's write like the "
        "base, not like your text). Usually the corpus is too small. "
        f"Ways out: add text; or use the weights training ended with, `{name}@last`: they "
        "know the training text and may copy it, so stop such a run early with --target-loss, which watches the "
        "training loss (--target-on train, the default)."]
