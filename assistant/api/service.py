"""What a running API server is: its options, its serving core (the worker's jobs, the loaded models) and its models.

The models a client can name are the ones `assistant models` lists (those
with weights) and the one the server was started with, by the name it was given.
"""

from contract import modeldir

from ..samples import recording
from ..serving.jobs import Jobs
from ..serving.models import Models
from .errors import ApiError
from .options import Options


class Service:
    """The running server's state: options, the default model's name, the worker's jobs and the loaded models."""

    def __init__(self, options: Options):
        options.check()
        self.options = options
        self.default = options.model or modeldir.newest()
        self.jobs = Jobs(options.slots, options.queue)
        self.models = Models(options.device, options.max_memory, sessions=options.slots)
        self.store = recording.Kept()  # the worker's, which records every sample

    def load(self) -> None:
        """Load the default model now, before the server listens: a wrong name is one line at once, and the first
        request does not wait for it. (Only the worker touches the models after this.)"""
        self.models.get(self.default, self.options.quantize)

    def names(self) -> list[str]:
        """The models a client can ask for: the default first, then the trained ones that have weights."""
        trained = [card.path.name for card in modeldir.cards() if card.path is not None and card.has_weights]
        return [self.default, *(name for name in trained if name != self.default)]

    def resolve(self, name: str | None) -> str:
        """The model a request names (None or empty: the default); 404 for one this server does not have."""
        if not name or name == self.default:
            return self.default
        names = self.names()
        if name not in names and not self._serves_blend(name, names):
            raise ApiError(404, f"no model {name!r}: this server has {', '.join(names)} (GET /v1/models lists them)",
                           param="model", code="model_not_found")
        return name

    def _serves_blend(self, name: str, names: list[str]) -> bool:
        """Whether `name` blends models this server has (A+B@0.7,0.3, see assistant.blending); 400 for weights that do
        not fit."""
        from corpora import UserError

        from ..blending import is_blend, parse

        if not is_blend(name):
            return False
        try:
            parts, _ = parse(name)
        except UserError as e:
            raise ApiError(400, str(e), param="model", code="invalid_blend") from None
        return all(part in names for part in parts)
