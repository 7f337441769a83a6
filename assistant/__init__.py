"""ghostwriter's user-facing side: the generation API and its front ends (CLI, REPL, editor server), the sample store.

`assistant.load_model(name_or_path)` is the Python API. It is imported lazily
so that `import assistant` (and `assistant --help`) stays free of torch.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from corpora.errors import UserError

if TYPE_CHECKING:
    from .generation import TextModel


def load_model(name_or_path: str | Path, device: str = "auto", quantize: str = "auto",
               backend: str | None = None) -> "TextModel":
    """A trained model by name or directory, with .generate() and .stream(); see assistant.generation."""
    from .generation import load_model as _load

    return _load(name_or_path, device, quantize, backend)


__all__ = ["UserError", "load_model"]
