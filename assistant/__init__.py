"""ghostwriter's user-facing side: CLI, generation API and (later) REPL, store, editor server.

`assistant.load_model(name_or_path)` is the Python API. It is imported lazily
so that `import assistant` (and `assistant --help`) stays free of torch.
"""

from corpora.errors import UserError


def load_model(name_or_path, device: str = "auto"):  # noqa: ANN001, ANN201 - typed in generation.load_model
    """A trained model by name or directory, with .generate() and .stream(); see assistant.generation."""
    from .generation import load_model as _load

    return _load(name_or_path, device)


__all__ = ["UserError", "load_model"]
