"""The language server: LSP messages in, the generation API's continuations out.

Handlers only parse, look up and answer; every generation runs on the jobs'
worker thread (see assistant.serving.jobs), so the event loop is always free to read the
next message: a `$/cancelRequest` is answered with RequestCancelled (-32800)
at once, and a newer request for a document makes the older one answer an
empty list. Input a client got wrong (a document it never opened, a position
past the end, a bad setting, an unknown suggestion) is refused with
InvalidParams (-32602), and a model that cannot be loaded or a generation
that fails with RequestFailed (-32803); the server goes on either way.

pygls's workspace keeps the documents (documents.py fills its gaps). As in
pygls's examples, the handlers are module-level functions registered on the
module's `server`, which `serve` configures from the command line; pygls
passes it to them as `ls`.
"""

import asyncio
import functools
import importlib.metadata
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import attrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from contract.sampling import MIN_TEMPERATURE
from corpora import UserError

from ..generation import Generation, Params, Session, TextModel, cpu_threads
from ..samples import recording
from ..serving.jobs import Jobs, Stopped
from ..serving.models import Models
from .continuation import context, continue_text, params
from .documents import check_change, offset, opened
from .settings import Settings
from .suggestions import Suggestion, Suggestions, record

UNCONDITIONAL = "ghostwriter.unconditional"
EVENT = "ghostwriter.event"
SETTINGS = "ghostwriter.settings"

T = TypeVar("T")


class RequestFailed(JsonRpcException):
    CODE = -32803  # LSP's RequestFailed: the request was valid, but the server could not do it


def tell(ls: LanguageServer, e: UserError) -> None:
    """Show the user what was wrong with a notification: it has no reply to carry an error."""
    ls.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"ghostwriter: {e}"))


log = logging.getLogger(__name__)
REFUSED = object()  # a message refused (and answered, if it was a request) as it was read


def _is_notification(method: str) -> bool:
    """Whether the spec defines `method` as a notification (its message has no id)."""
    message = types.METHOD_TO_TYPES.get(method, (None,))[0]
    return message is not None and "id" not in attrs.fields_dict(message)


class Protocol(LanguageServerProtocol):
    """pygls's protocol, but a request whose params do not parse is answered with InvalidParams, and one that comes
    before initialize with ServerNotInitialized (-32002), as the spec says.

    pygls logs such a request and drops it, which leaves the client waiting forever.
    """

    def structure_message(self, data: dict[str, Any]) -> Any:
        method = data.get("method") if "jsonrpc" in data else None
        if method is not None and self._workspace is None and method not in (types.INITIALIZE, types.EXIT):
            # before initialize, as the spec says: a request is answered ServerNotInitialized, a notification dropped
            if "id" in data:
                error = JsonRpcServerNotInitialized(f"send initialize before {method}")
                self._send_response(data["id"], error=error.to_response_error())
            return REFUSED
        if method is not None and "id" in data and _is_notification(method):
            # a notification sent with an id is a request nobody would answer: pygls runs it and replies nothing
            error = JsonRpcInvalidRequest(f"{method} is a notification: send it without an id")
            self._send_response(data["id"], error=error.to_response_error())
            return REFUSED
        try:
            return super().structure_message(data)
        except JsonRpcException as e:
            if "id" in data and "method" in data:
                cause = str(e.__cause__ or "").splitlines()[0:1]
                detail = f"{e.message} for {data['method']}" + (f": {cause[0]}" if cause else "")
                self._send_response(data["id"], error=type(e)(detail, e.code).to_response_error())
            raise

    def handle_message(self, message: Any) -> None:
        """After shutdown a request is answered with InvalidRequest, as the spec says; pygls would leave it unanswered.

        So is JSON that is no JSON-RPC 2.0 message (no "jsonrpc" member, an array, a number), which pygls would pass
        on as it is and fail on with a traceback: a client's mistake, told to the client, logged in one line.
        """
        if message is REFUSED:  # answered already, by structure_message
            return
        if not hasattr(message, "jsonrpc"):
            log.warning("not a JSON-RPC 2.0 message: %.200s", json.dumps(message))
            if isinstance(message, dict) and isinstance(message.get("id"), int | str):
                error = JsonRpcInvalidRequest('not a JSON-RPC 2.0 message: it needs "jsonrpc": "2.0"')
                self._send_response(message["id"], error=error.to_response_error())
            return
        is_request = getattr(message, "method", None) is not None and getattr(message, "id", None) is not None
        if self._shutdown and is_request:  # `exit` is a notification: it still goes through
            error = JsonRpcInvalidRequest("the server is shutting down: it takes no more requests")
            self._send_response(message.id, error=error.to_response_error())
            return
        super().handle_message(message)

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls's, but over a copy of the requests in flight: cancelling one removes it from pygls's dict at once,
        which made pygls's own loop fail (RuntimeError) whenever a generation was running at shutdown."""
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id  # the shutdown request's own future is answered, not cancelled
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        """pygls's, but each change is checked before pygls applies it (see documents.py).

        A change that fails the check is dropped with those after it, and the user told.
        """
        try:
            document = opened(self.workspace, params.text_document.uri)
            for change in params.content_changes:
                check_change(document, change)
                self.workspace.update_text_document(params.text_document, change)
        except UserError as e:
            tell(self._server, e)


class NotJsonInOneLine(logging.Filter):
    """A message that is not JSON is the client's mistake: one line in the log, not the JSON parser's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], json.JSONDecodeError):
            record.msg, record.args = f"{record.getMessage()}: not JSON ({record.exc_info[1]})", ()
            record.exc_info = record.exc_text = None
        return True


class GhostwriterServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("ghostwriter", importlib.metadata.version("ghostwriter"),
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental, protocol_cls=Protocol)
        self.settings = Settings()
        self.jobs = Jobs()
        self.suggestions = Suggestions()
        self.models = Models()  # and the documents' sessions: the few most recent keep their model state

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A message that is not JSON is answered with ParseError and a null id, as JSON-RPC says, not shown to the
        writer as a server error (pygls's way, kept for everything else)."""
        if isinstance(error, json.JSONDecodeError):
            self.protocol._send_response(None, error=JsonRpcParseError(f"not JSON: {error}").to_response_error())
            return
        super().report_server_error(error, source)

    def model(self, name: str | None, quantize: str) -> TextModel:
        """The model named in the settings (None: the newest trained), loaded once; on the worker thread only."""
        return self.models.get(name, quantize)

    def close(self, document: str) -> None:
        """A closed document's session goes with it (its GPT-2 cache is 75 MB); a generation using it finishes first."""
        self.models.sessions.drop(document)

    def session(self, document: str, model: TextModel) -> Session:
        """The document's session with `model`, so that a request feeds only what changed since the last one."""
        return self.models.sessions.for_document(document, model)

    async def generate(self, fn: Callable[[TextModel, threading.Event], T], document: str | None) -> T:
        """`fn(model, stop)` on the worker with the current settings' model; its failures become RequestFailed."""
        name, quantize = self.settings.model, self.settings.quantize

        def work(stop: threading.Event) -> T:
            return fn(self.model(name, quantize), stop)

        try:
            return await self.jobs.run(work, document)
        except UserError as e:
            raise RequestFailed(str(e)) from e

    def warm_up(self) -> None:
        """Load the model and run it once in the background, so the first suggestion comes as fast as the rest.

        Nothing is recorded: the writer never sees this text. Like every job it
        stops at its stop event, so a shutdown while it runs ends it.
        """
        def first(model: TextModel, stop: threading.Event) -> None:
            continue_text(model, " ", Params(max_new_chars=1), stop)

        task = asyncio.ensure_future(self.generate(first, None))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a failure is reported at the first request


server = GhostwriterServer()


def refusing(handler: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A command whose UserErrors are answered as InvalidParams."""
    @functools.wraps(handler)
    async def wrapper(*args: Any) -> T:
        try:
            return await handler(*args)
        except UserError as e:
            raise JsonRpcInvalidParams(str(e)) from e

    return wrapper


async def suggest(ls: GhostwriterServer, uri: str, position: types.Position, n: int, limit: int) -> list[Suggestion]:
    """Up to `n` different continuations of the text before `position` (none if a newer request came in).

    Alternatives are for cycling through, so a draw that repeats one already found is drawn again, up to `n` times
    more; a greedy (temperature 0) generation has one continuation, so it is drawn once.
    """
    try:
        document = opened(ls.workspace, uri)
        prompt = context(document.source[: offset(document, position)], ls.settings)
    except UserError as e:
        raise JsonRpcInvalidParams(str(e)) from e
    settings = ls.settings

    def write(model: TextModel, stop: threading.Event) -> list[Generation]:
        found: dict[str, Generation] = {}  # by text: the first generation that wrote it
        for _ in range(1 if settings.temperature < MIN_TEMPERATURE else 2 * n):
            if len(found) == n:
                break
            result = continue_text(model, prompt, params(settings, limit, settings.stop_at), stop,
                                   ls.session(uri, model))
            if result.text:
                found.setdefault(result.text, result)
        return list(found.values())

    try:
        found = await ls.generate(write, uri)
    except Stopped:
        return []
    return [ls.suggestions.add(uri, result) for result in found]


@server.feature(types.INITIALIZE)
def initialize(ls: GhostwriterServer, params: types.InitializeParams) -> None:
    try:
        ls.settings = ls.settings.updated(params.initialization_options)
    except UserError as e:
        raise JsonRpcInvalidParams(str(e)) from e


@server.feature(types.INITIALIZED)
def initialized(ls: GhostwriterServer, params: types.InitializedParams) -> None:
    ls.warm_up()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: GhostwriterServer, params: types.DidChangeConfigurationParams) -> None:
    try:
        new = ls.settings.updated(params.settings)
    except UserError as e:
        tell(ls, e)
        return
    changed_model = (new.model, new.quantize) != (ls.settings.model, ls.settings.quantize)
    ls.settings = new
    if changed_model:
        ls.warm_up()


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: GhostwriterServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.close(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: GhostwriterServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    """As you type (automatic): one short continuation; asked for (invoked): up to `alternatives`."""
    s = ls.settings
    automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
    n, limit = (1, s.auto_chars) if automatic else (s.alternatives, s.max_chars)
    here = types.Range(params.position, params.position)
    found = await suggest(ls, params.text_document.uri, params.position, n, limit)
    return types.InlineCompletionList([
        types.InlineCompletionItem(insert_text=sug.text, range=here, command=accepted(sug)) for sug in found
    ])


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
async def completion(ls: GhostwriterServer, params: types.CompletionParams) -> types.CompletionList:
    """For clients without inline completions: the continuation as one item, inserted at the cursor."""
    here = types.Range(params.position, params.position)
    found = await suggest(ls, params.text_document.uri, params.position, 1, ls.settings.max_chars)
    return types.CompletionList(is_incomplete=True, items=[
        types.CompletionItem(label=sug.text, kind=types.CompletionItemKind.Text, detail="ghostwriter",
                             insert_text=sug.text, filter_text="", text_edit=types.TextEdit(here, sug.text),
                             command=accepted(sug))
        for sug in found
    ])


@server.command(UNCONDITIONAL)
@refusing
async def unconditional(ls: GhostwriterServer, *args: Any) -> dict[str, Any]:
    """A sample from nothing, for the cursor (the plugin inserts it); recorded like every sample the writer asks for.

    Optional argument: the document's URI, so a newer request for it supersedes this one.
    """
    uri = args[0] if args and isinstance(args[0], str) else None
    p = params(ls.settings, ls.settings.max_chars, "length")

    def write(model: TextModel, stop: threading.Event) -> Generation:
        return continue_text(model, "", p, stop)

    try:
        result = await ls.generate(write, uri)
    except Stopped:
        return {"text": "", "sampleId": None}
    return {"text": result.text, "sampleId": await asyncio.to_thread(recording.record, result, "editor")}


@server.command(EVENT)
@refusing
async def event(ls: GhostwriterServer, *args: Any) -> dict[str, Any]:
    """What became of a suggestion: arguments [suggestion id, "shown" | "accepted" | "partial", accepted text]."""
    if not 2 <= len(args) <= 3 or not all(isinstance(a, str) for a in args):
        raise UserError(f"{EVENT} takes [suggestion id, event, accepted text (optional)], got {list(args)!r}")
    suggestion = ls.suggestions.get(args[0])
    sample_id = await asyncio.to_thread(record, suggestion, args[1], args[2] if len(args) == 3 else None)
    return {"sampleId": sample_id}


@server.command(SETTINGS)
def current_settings(ls: GhostwriterServer, *args: Any) -> dict[str, Any]:
    """The settings in force, for plugins that take their debounce from the server."""
    return ls.settings.as_json()


@server.feature(types.SHUTDOWN)
def shutdown(ls: GhostwriterServer, params: None) -> None:
    ls.jobs.close()


@server.feature(types.EXIT)
def exit_(ls: GhostwriterServer, params: None) -> None:
    """An exit without a shutdown first stops the generations too: the process must not wait for one."""
    ls.jobs.close()


def accepted(suggestion: Suggestion) -> types.Command:
    """The command a client runs once it has inserted the suggestion (the spec's `command` of an item)."""
    return types.Command(title="ghostwriter: accepted", command=EVENT, arguments=[suggestion.id, "accepted"])


def serve(model: str | None, device: str, quantize: str = "auto") -> None:
    """Answer LSP messages on stdin/stdout until the client says exit."""
    logging.basicConfig(level=logging.WARNING, format="ghostwriter lsp: %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(NotJsonInOneLine())
    server.settings = Settings(model=model, quantize=quantize)
    server.settings.check()
    server.models.device = device
    os.environ.setdefault("ASSISTANT_THREADS", str(cpu_threads(reserve=1)))  # the models it loads keep to that
    try:
        server.start_io()
    finally:  # the client went away (stdin closed) without a word: stop the worker's job so the process exits
        server.jobs.close()
