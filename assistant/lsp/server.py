"""The language server: LSP messages in, the generation API's continuations out.

Handlers only parse, look up and answer; every generation runs on the jobs'
worker thread (see jobs.py), so the event loop is always free to read the
next message: a `$/cancelRequest` is answered with RequestCancelled (-32800)
at once, and a newer request for a document makes the older one answer an
empty list. Input a client got wrong (a document it never opened, a position
past the end, a bad setting, an unknown suggestion) is refused with
InvalidParams (-32602), and a model that cannot be loaded or a generation
that fails with RequestFailed (-32803); the server goes on either way.
"""

import asyncio
import functools
import importlib.metadata
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from corpora import UserError

from ..generation import Params, TextModel, load_model
from .continuation import context, continue_text, params
from .documents import Documents
from .jobs import Jobs, Stopped
from .settings import Settings
from .suggestions import Suggestion, Suggestions, record

log = logging.getLogger(__name__)

UNCONDITIONAL = "ghostwriter.unconditional"
EVENT = "ghostwriter.event"
SETTINGS = "ghostwriter.settings"

T = TypeVar("T")


class RequestFailed(JsonRpcException):
    CODE = -32803  # LSP's RequestFailed: the request was valid, but the server could not do it


class Protocol(LanguageServerProtocol):
    """pygls's protocol, but a request whose params do not parse is answered with InvalidParams.

    pygls logs such a request and drops it, which leaves the client waiting forever.
    """

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as e:
            if "id" in data and "method" in data:
                cause = str(e.__cause__ or "").splitlines()[0:1]
                detail = f"{e.message} for {data['method']}" + (f": {cause[0]}" if cause else "")
                self._send_response(data["id"], error=type(e)(detail, e.code).to_response_error())
            raise

    def handle_message(self, message: Any) -> None:
        """After shutdown a request is answered with InvalidRequest, as the spec says; pygls would leave it unanswered."""
        is_request = getattr(message, "method", None) is not None and getattr(message, "id", None) is not None
        if self._shutdown and is_request:  # `exit` is a notification: it still goes through
            error = JsonRpcInvalidRequest("the server is shutting down: it takes no more requests")
            self._send_response(message.id, error=error.to_response_error())
            return
        super().handle_message(message)


def refused(e: UserError) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(str(e))


class GhostwriterServer(LanguageServer):
    def __init__(self, model: str | None = None, device: str = "auto"):
        super().__init__("ghostwriter", importlib.metadata.version("ghostwriter"),
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental, protocol_cls=Protocol)
        self.settings = Settings(model=model)
        self.device = device
        self.documents = Documents()
        self.jobs = Jobs()
        self.suggestions = Suggestions()
        self._models: dict[str, TextModel] = {}

    def model(self, name: str | None) -> TextModel:
        """The model named in the settings (None: the newest trained), loaded once; on the worker thread only."""
        from ..repl import newest_model

        name = name or newest_model()
        if name not in self._models:
            self._models[name] = load_model(name, self.device)
        return self._models[name]

    async def generate(self, fn: Callable[[TextModel, threading.Event], T], document: str | None) -> T:
        """`fn(model, stop)` on the worker with the current settings' model; its failures become RequestFailed."""
        name = self.settings.model

        def work(stop: threading.Event) -> T:
            return fn(self.model(name), stop)

        try:
            return await self.jobs.run(work, document)
        except UserError as e:
            raise RequestFailed(str(e)) from e

    async def suggest(self, uri: str, position: types.Position, n: int, limit: int) -> list[Suggestion]:
        """Up to `n` different continuations of the text before `position` (none if a newer request came in)."""
        try:
            prompt = context(self.documents.before(uri, position), self.settings)
        except UserError as e:
            raise refused(e) from e
        settings = self.settings

        def write(model: TextModel, stop: threading.Event) -> tuple[TextModel, dict[str, tuple[Params, float]]]:
            found: dict[str, tuple[Params, float]] = {}  # text: how it was written, in how many seconds
            for _ in range(n):
                start, p = time.perf_counter(), params(settings, limit, settings.stop_at)
                text = continue_text(model, prompt, p, settings.stop_at, stop)
                if text and text not in found:
                    found[text] = p, time.perf_counter() - start
            return model, found

        try:
            model, found = await self.generate(write, uri)
        except Stopped:
            return []
        return [self.suggestions.add(uri, model, prompt, text, p, p.seed, seconds) for text, (p, seconds) in found.items()]

    def warm_up(self) -> None:
        """Load the model and run it once in the background, so the first suggestion comes as fast as the rest."""
        def first(model: TextModel, stop: threading.Event) -> None:
            model.generate(" ", max_new_chars=1, log=False)

        task = asyncio.ensure_future(self.generate(first, None))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a failure is reported at the first request


def refusing(handler: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A handler whose UserErrors are answered as InvalidParams."""
    @functools.wraps(handler)
    async def wrapper(*args: Any) -> T:
        try:
            return await handler(*args)
        except UserError as e:
            raise refused(e) from e

    return wrapper


def build_server(model: str | None = None, device: str = "auto") -> GhostwriterServer:
    server = GhostwriterServer(model, device)

    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        server.documents.encoding = server.workspace.position_encoding or types.PositionEncodingKind.Utf16
        try:
            server.settings = server.settings.updated(params.initialization_options)
        except UserError as e:
            raise refused(e) from e

    @server.feature(types.INITIALIZED)
    def initialized(params: types.InitializedParams) -> None:
        server.warm_up()

    def refuse(e: UserError) -> None:
        server.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"ghostwriter: {e}"))

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        try:
            new = server.settings.updated(params.settings)
        except UserError as e:
            refuse(e)
            return
        changed_model = new.model != server.settings.model
        server.settings = new
        if changed_model:
            server.warm_up()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        server.documents.open(params.text_document.uri, params.text_document.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        try:
            server.documents.change(params.text_document.uri, params.content_changes)
        except UserError as e:  # a notification has no reply to carry the error: the user is told
            refuse(e)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        server.documents.close(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(params: types.InlineCompletionParams) -> types.InlineCompletionList:
        """As you type (automatic): one short continuation; asked for (invoked): up to `alternatives`."""
        s = server.settings
        automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
        n, limit = (1, s.auto_chars) if automatic else (s.alternatives, s.max_chars)
        here = types.Range(params.position, params.position)
        found = await server.suggest(params.text_document.uri, params.position, n, limit)
        return types.InlineCompletionList([
            types.InlineCompletionItem(insert_text=sug.text, range=here, command=accepted(sug)) for sug in found
        ])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
    async def completion(params: types.CompletionParams) -> types.CompletionList:
        """For clients without inline completions: the continuation as one item, inserted at the cursor."""
        here = types.Range(params.position, params.position)
        found = await server.suggest(params.text_document.uri, params.position, 1, server.settings.max_chars)
        return types.CompletionList(is_incomplete=True, items=[
            types.CompletionItem(label=sug.text, kind=types.CompletionItemKind.Text, detail="ghostwriter",
                                 insert_text=sug.text, filter_text="", text_edit=types.TextEdit(here, sug.text),
                                 command=accepted(sug))
            for sug in found
        ])

    @server.command(UNCONDITIONAL)
    @refusing
    async def unconditional(*args: Any) -> dict[str, Any]:
        """A sample from nothing, for the cursor (the plugin inserts it); stored like every sample the writer asks for.

        Optional argument: the document's URI, so a newer request for it supersedes this one.
        """
        uri = args[0] if args and isinstance(args[0], str) else None
        p = params(server.settings, server.settings.max_chars, "length")

        def write(model: TextModel, stop: threading.Event) -> dict[str, Any]:
            text = continue_text(model, "", p, "length", stop, source="editor")
            return {"text": text, "sampleId": model.last_sample_id}

        try:
            return await server.generate(write, uri)
        except Stopped:
            return {"text": "", "sampleId": None}

    @server.command(EVENT)
    @refusing
    async def event(*args: Any) -> dict[str, Any]:
        """What became of a suggestion: arguments [suggestion id, "shown" | "accepted" | "partial", accepted text]."""
        if not 2 <= len(args) <= 3 or not all(isinstance(a, str) for a in args):
            raise UserError(f"{EVENT} takes [suggestion id, event, accepted text (optional)], got {list(args)!r}")
        suggestion = server.suggestions.get(args[0])
        sample_id = await asyncio.to_thread(record, suggestion, args[1], args[2] if len(args) == 3 else None)
        return {"sampleId": sample_id}

    @server.command(SETTINGS)
    def current_settings(*args: Any) -> dict[str, Any]:
        """The settings in force, for plugins that take their debounce from the server."""
        return server.settings.as_json()

    @server.feature(types.SHUTDOWN)
    def shutdown(params: None) -> None:
        server.jobs.close()

    return server


def accepted(suggestion: Suggestion) -> types.Command:
    """The command a client runs once it has inserted the suggestion (the spec's `command` of an item)."""
    return types.Command(title="ghostwriter: accepted", command=EVENT, arguments=[suggestion.id, "accepted"])


def serve(model: str | None, device: str) -> None:
    """Answer LSP messages on stdin/stdout until the client says exit."""
    logging.basicConfig(level=logging.WARNING, format="ghostwriter lsp: %(levelname)s %(message)s")
    build_server(model, device).start_io()
