"""Command-line options that several commands share, declared once so a flag means one thing everywhere.

The conventions (tests/test_cli.py walks the app and checks them): a command
that writes a file takes it as `-o/--out`; one that reads a model's weights
takes `--device` and `--quantize`; one that prints a listing takes `--json`.
"""

import inspect
from pathlib import Path
from typing import Annotated

import typer

DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA, then Apple's MPS, then the CPU), cpu, cuda or cuda:N.")]
QuantizeOpt = Annotated[str, typer.Option(
    "--quantize", help="GPT-2 on a CPU: auto (int8 where its loss check allows), int8 (or an error saying why not), none.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table, for scripts.")]


def eval_samples_option(panel: str | None = None) -> typer.models.OptionInfo:
    return typer.Option("--eval-samples", "-k", help="Prompted continuations per ghostwriting evaluation, and as many "
                                                     "unconditional samples (finetune's default: 32 for a char-LSTM, which "
                                                     "writes them in one batch, 16 for the others).", rich_help_panel=panel)


def copy_span_option(panel: str | None = None) -> typer.models.OptionInfo:
    return typer.Option("--copy-span", help="A sample holding this many characters of the corpus verbatim copies it.",
                        rich_help_panel=panel)


EvalSamplesOpt = Annotated[int, eval_samples_option()]
CopySpanOpt = Annotated[int, copy_span_option()]


def out_option(help: str) -> typer.models.OptionInfo:
    """`-o/--out FILE`, the one spelling of where a command writes."""
    return typer.Option("--out", "-o", help=help)



# ---- the sampler chain (contract.sampling.Sampling): the same flags wherever a model writes ----
CHAIN = "Sampler chain (docs/controls.md)"


def _chain(help: str) -> typer.models.OptionInfo:
    return typer.Option(help=help, rich_help_panel=CHAIN)


MinPOpt = Annotated[float | None, _chain("Keep tokens at least this share as likely as the likeliest.")]
TypicalPOpt = Annotated[float | None, _chain("Locally typical sampling's probability mass.")]
RepetitionPenaltyOpt = Annotated[float, _chain("Above 1: tokens already written are less likely.")]
RepetitionRangeOpt = Annotated[int, _chain("How many recent tokens the penalties look at (0: all).")]
PresencePenaltyOpt = Annotated[float, _chain("Subtracted once from a token already written.")]
FrequencyPenaltyOpt = Annotated[float, _chain("Subtracted per time a token was written.")]
DryMultiplierOpt = Annotated[float, _chain("DRY: penalty on repeating a sequence (0 off; 0.8 usual).")]
DryBaseOpt = Annotated[float, _chain("DRY: how fast the penalty grows with the repeat's length.")]
DryAllowedLengthOpt = Annotated[int, _chain("DRY: the longest repeat left alone, in tokens.")]
DryRangeOpt = Annotated[int, _chain("DRY: how many recent tokens it looks at (0: all).")]
BiasOpt = Annotated[list[str] | None, _chain("TEXT=N: add N to the logits of TEXT's tokens (repeatable; "
                                            "negative: less of it).")]
BanOpt = Annotated[list[str] | None, _chain("A phrase never written, any case, whole words (repeatable).")]
BanFileOpt = Annotated[Path | None, _chain("Banned phrases, one a line.")]
MaxCopyOpt = Annotated[int | None, _chain("Copy guard: never more than N characters of the corpus verbatim.")]


def chain_settings(min_p: float | None = None, typical_p: float | None = None, repetition_penalty: float = 1.0,
                   repetition_range: int = 0, presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                   dry_multiplier: float = 0.0, dry_base: float = 1.75, dry_allowed_length: int = 2, dry_range: int = 0,
                   bias: list[str] | None = None, ban: list[str] | None = None, ban_file: Path | None = None,
                   max_copy: int | None = None) -> dict:
    """The flags given (those not at the chain's default) as generation settings (TextModel.stream's keyword
    arguments): a model's own defaults (`models set`) stand for the others."""
    from corpora import UserError

    biases = []
    for item in bias or ():
        text, sep, value = item.rpartition("=")
        try:
            biases.append((text, float(value)))
        except ValueError:
            sep = ""
        if not sep or not text:
            raise UserError(f"--bias takes TEXT=NUMBER, such as 'rain=2' or 'suddenly=-5', not {item!r}")
    phrases = list(ban or ())
    if ban_file is not None:
        try:
            phrases += [line.strip() for line in ban_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read --ban-file {ban_file}: {e}") from None
    from contract.sampling import changed

    settings = {"min_p": min_p, "typical_p": typical_p, "repetition_penalty": repetition_penalty,
                "repetition_range": repetition_range, "presence_penalty": presence_penalty,
                "frequency_penalty": frequency_penalty, "dry_multiplier": dry_multiplier, "dry_base": dry_base,
                "dry_allowed_length": dry_allowed_length, "dry_range": dry_range, "logit_bias": tuple(biases),
                "ban": tuple(phrases), "max_copy": max_copy}
    return changed(settings)


# the chain's flags with their defaults (see taking_chain_flags)
CHAIN_FLAGS: dict[str, tuple[object, object]] = {
    "min_p": (MinPOpt, None), "typical_p": (TypicalPOpt, None), "repetition_penalty": (RepetitionPenaltyOpt, 1.0),
    "repetition_range": (RepetitionRangeOpt, 0), "presence_penalty": (PresencePenaltyOpt, 0.0),
    "frequency_penalty": (FrequencyPenaltyOpt, 0.0), "dry_multiplier": (DryMultiplierOpt, 0.0),
    "dry_base": (DryBaseOpt, 1.75), "dry_allowed_length": (DryAllowedLengthOpt, 2), "dry_range": (DryRangeOpt, 0),
    "bias": (BiasOpt, None), "ban": (BanOpt, None), "ban_file": (BanFileOpt, None), "max_copy": (MaxCopyOpt, None),
}


def adding_flags(flags: dict[str, tuple[object, object]]):
    """A decorator: the command's signature with `flags` (name: (annotation, default)) after its own parameters, so
    Typer offers them as options; the command takes them in its **kwargs."""
    def decorate(command):
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=default)
                 for name, (option, default) in flags.items()]
        command.__signature__ = signature.replace(parameters=[*own, *added])
        return command
    return decorate


# the chain's flags for a command that takes them in **kwargs (`finetune` and `report`: the ghostwriting evaluation's
# sampling), read with chain_flags
taking_chain_flags = adding_flags(CHAIN_FLAGS)


def chain_flags(flags: dict) -> dict:
    """The chain's flags taken out of a command's **flags, as chain_settings gives them (those not at the default)."""
    return chain_settings(**{name: flags.pop(name, default) for name, (_, default) in CHAIN_FLAGS.items()})


BackendOpt = Annotated[str | None, typer.Option(
    help="GPT-2 on a CPU: torch, or llama.cpp (its GGUF export, written once; needs pip install "
         "'ghostwriter[llamacpp]'). Default: $ASSISTANT_BACKEND, else torch.")]
