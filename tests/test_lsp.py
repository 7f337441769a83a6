"""The editor server, spoken to by a real LSP client (pytest-lsp) over stdio, with the tiny trained model."""

import asyncio
import json
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec
from pytest_lsp import ClientServerConfig, LanguageClient

from assistant.blending import BlendWarning
from assistant.generation import SENTENCE_END, load_model
from assistant.lsp.continuation import params
from assistant.lsp.documents import offset
from assistant.lsp.settings import Settings
from assistant.samples.store import Store
from corpora import UserError

URI = "file:///tmp/story.txt"
PROSE = "The robot looked at the man for a long time. Then it said that the door was open, and"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "assistant", "lsp"]))
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def start(client: LanguageClient, model: Path, **options) -> types.InitializeResult:
    result = await client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(), initialization_options={"model": str(model), **options}))
    return result


def open_document(client: LanguageClient, text: str = PROSE, uri: str = URI) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "plaintext", 1, text)))


def inline_params(position: types.Position, trigger=types.InlineCompletionTriggerKind.Automatic,
                  uri: str = URI) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(types.InlineCompletionContext(trigger), types.TextDocumentIdentifier(uri), position)


def end_of(text: str) -> types.Position:
    lines = text.split("\n")
    return types.Position(len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2)


async def error_of(request) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as caught:
        await request
    return caught.value


async def test_initialize_advertises_inline_completion_and_the_commands(client: LanguageClient, trained_model: Path):
    result = await start(client, trained_model)
    capabilities = result.capabilities
    assert capabilities.inline_completion_provider
    assert capabilities.completion_provider is not None
    assert capabilities.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    assert {"ghostwriter.unconditional", "ghostwriter.event", "ghostwriter.settings"} <= set(
        capabilities.execute_command_provider.commands)
    settings = await client.workspace_execute_command_async(types.ExecuteCommandParams("ghostwriter.settings"))
    assert settings["model"] == str(trained_model) and settings["debounceMs"] == 250


async def test_inline_and_plain_completion_continue_the_document(client: LanguageClient, trained_model: Path):
    await start(client, trained_model, temperature=0, topP=None, autoChars=80)
    open_document(client)
    here = end_of(PROSE)
    result = await client.text_document_inline_completion_async(inline_params(here))
    [item] = result.items
    # greedy, so exactly what the generation API writes after the document, cut after the sentence or line
    expected = load_model(trained_model, "cpu").generate(PROSE, max_new_chars=80, temperature=0, stop="\n")
    end = SENTENCE_END.search(expected)
    assert item.insert_text == (expected[: end.end()] if end else expected) and item.insert_text
    assert item.range == types.Range(here, here)
    assert item.command.command == "ghostwriter.event" and item.command.arguments[1] == "accepted"

    completion = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(URI), here))
    [plain] = completion.items
    assert plain.insert_text.startswith(item.insert_text) and plain.text_edit.range == types.Range(here, here)


async def test_a_blend_with_prompt_guidance_suggests_what_the_generation_api_writes(client: LanguageClient,
                                                                                   trained_model: Path,
                                                                                   quoted_model: Path):
    blend = f"{trained_model}+{quoted_model}@0.7,0.3"
    await start(client, blend, temperature=0, topP=None, autoChars=80, stopAt="length", promptGuidance=0)
    open_document(client)
    result = await client.text_document_inline_completion_async(inline_params(end_of(PROSE)))
    [item] = result.items
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlendWarning)
        model = load_model(blend, "cpu")
    expected = model.generate(PROSE, max_new_chars=80, temperature=0, prompt_guidance=0.0)
    assert item.insert_text == expected and len(expected) == 80
    assert expected != model.generate(PROSE, max_new_chars=80, temperature=0)  # at 0: no prompt


def test_steering_settings_are_checked():
    settings = Settings().updated({"ghostwriter": {"author": "austen", "guidance": 2, "promptGuidance": 1.5}})
    assert (settings.author, settings.guidance, settings.prompt_guidance) == ("austen", 2, 1.5)
    assert params(settings, 10, "length").author == "austen"
    for bad, said in (({"guidance": -1}, "guidance must be a number"), ({"author": 3}, "author must be")):
        with pytest.raises(UserError, match=said):
            Settings().updated(bad)


async def test_an_invoked_trigger_offers_alternatives(client: LanguageClient, trained_model: Path):
    await start(client, trained_model, temperature=1.5, maxChars=40, stopAt="length")
    open_document(client)
    result = await client.text_document_inline_completion_async(
        inline_params(end_of(PROSE), types.InlineCompletionTriggerKind.Invoked))
    texts = [item.insert_text for item in result.items]
    assert len(texts) == 3 and len(set(texts)) == 3 and all(len(t) == 40 for t in texts)  # repeats are drawn again


async def test_incremental_changes_in_utf16_and_the_accepted_suggestion_is_stored(client: LanguageClient,
                                                                                  trained_model: Path):
    await start(client, trained_model, temperature=0)
    open_document(client, "Caf\u00e9 \U0001f600 the robot.\nSecond line")
    # insert after the emoji (two UTF-16 units: character 7, not 6), then replace "Second" on the next line
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(version=2, uri=URI),
        content_changes=[
            types.TextDocumentContentChangePartial(range=types.Range(types.Position(0, 7), types.Position(0, 7)), text=" and"),
            types.TextDocumentContentChangePartial(range=types.Range(types.Position(1, 0), types.Position(1, 6)),
                                                   text="The man"),
        ]))
    text = "Caf\u00e9 \U0001f600 and the robot.\nThe man line"
    result = await client.text_document_inline_completion_async(inline_params(end_of(text)))
    [item] = result.items
    shown = types.ExecuteCommandParams("ghostwriter.event", [item.command.arguments[0], "shown"])
    await client.workspace_execute_command_async(shown)
    answer = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(item.command.command, item.command.arguments))
    with Store() as store:
        sample = store.get(answer["sampleId"])
        events = store.editor_events()
    assert sample.prompt == text and sample.text == item.insert_text and sample.source == "editor"
    assert [(e["event"], e["accepted"], e["sample_id"]) for e in events] == [
        ("shown", None, None), ("accepted", item.insert_text, sample.id)]


def test_positions_count_utf16_units_and_clamp_to_the_line():
    text = "a\U0001f600b\r\nsecond"

    def before(position: types.Position, encoding: types.PositionEncodingKind = types.PositionEncodingKind.Utf16) -> str:
        document = TextDocument(URI, text, position_codec=PositionCodec(encoding))
        return text[: offset(document, position)]

    assert before(types.Position(0, 3)) == "a\U0001f600"
    assert before(types.Position(0, 99)) == "a\U0001f600b"
    assert before(types.Position(1, 3)) == "a\U0001f600b\r\nsec"
    assert before(types.Position(1, 99)) == text  # pygls alone: one character short of the end
    assert before(types.Position(0, 5), types.PositionEncodingKind.Utf8) == "a\U0001f600"


def raw_request(client: LanguageClient, method: str, params: dict) -> asyncio.Future:
    """Send a request as JSON, past the typed client that would refuse params that do not fit the method."""
    answer = asyncio.get_running_loop().create_future()
    client.protocol._request_futures["raw"] = answer
    client.protocol._send_data({"jsonrpc": "2.0", "id": "raw", "method": method, "params": params})
    return answer


LONG = {"maxChars": 20000, "stopAt": "length", "alternatives": 1}  # a generation that runs for seconds


async def test_cancel_answers_request_cancelled_at_once(client: LanguageClient, trained_model: Path):
    await start(client, trained_model, **LONG)
    open_document(client)
    await client.text_document_inline_completion_async(inline_params(end_of(PROSE)))  # the model is loaded
    params = inline_params(end_of(PROSE), types.InlineCompletionTriggerKind.Invoked)
    request = asyncio.ensure_future(
        client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="long"))
    await asyncio.sleep(0.5)  # the generation is under way
    cancelled_at = time.perf_counter()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long"))
    error = await error_of(request)
    assert error.code == -32800 and time.perf_counter() - cancelled_at < 1
    # the worker dropped the generation: the next request is answered without waiting for it to finish
    started = time.perf_counter()
    result = await client.text_document_inline_completion_async(inline_params(end_of(PROSE)))
    assert result.items and time.perf_counter() - started < 2


async def test_the_newer_request_for_a_document_wins(client: LanguageClient, trained_model: Path):
    await start(client, trained_model, **LONG)
    open_document(client)
    older = asyncio.ensure_future(client.text_document_inline_completion_async(
        inline_params(end_of(PROSE), types.InlineCompletionTriggerKind.Invoked)))
    await asyncio.sleep(0.5)  # the older one's generation is under way
    newer = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(end_of(PROSE))))
    older_result, newer_result = await asyncio.wait_for(asyncio.gather(older, newer), 10)
    assert not older_result.items and len(newer_result.items) == 1


async def test_bad_messages_get_errors_and_the_server_lives(client: LanguageClient, trained_model: Path):
    await start(client, trained_model, temperature=0, topP=None)  # greedy: a sampled continuation may be empty
    here = end_of(PROSE)
    assert (await error_of(client.protocol.send_request_async("ghostwriter/nothing", {}))).code == -32601
    not_open = await error_of(client.text_document_inline_completion_async(inline_params(here)))
    assert not_open.code == -32602 and "not open" in not_open.message
    malformed = await error_of(raw_request(client, types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": {"uri": 5}}))
    assert malformed.code == -32602
    open_document(client)
    reversed_range = types.Range(types.Position(0, 5), types.Position(0, 1))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(2, URI), [types.TextDocumentContentChangePartial(reversed_range, "x")]))
    told = f"ghostwriter: {URI}: a change whose range ends before it starts"  # a notification has no reply
    for _ in range(100):
        if told in [m.message for m in client.messages]:
            break
        await asyncio.sleep(0.1)
    assert told in [m.message for m in client.messages]
    past_end = await error_of(client.text_document_inline_completion_async(inline_params(types.Position(40, 0))))
    assert past_end.code == -32602 and "past the end" in past_end.message
    unknown = await error_of(client.workspace_execute_command_async(types.ExecuteCommandParams("ghostwriter.event",
                                                                                              ["s999", "accepted"])))
    assert unknown.code == -32602 and "no suggestion" in unknown.message
    # a model that cannot be loaded fails the request, and the server goes on with the next setting
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams({"ghostwriter": {"model": "no-such-model"}}))
    failed = await error_of(client.text_document_inline_completion_async(inline_params(here)))
    assert failed.code == -32803 and "no-such-model" in failed.message
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams({"ghostwriter": {"model": str(trained_model)}}))
    assert (await client.text_document_inline_completion_async(inline_params(here))).items


def test_what_is_no_json_rpc_message_is_answered_and_logged_in_one_line(isolated_home: Path):
    """A client's mistake below the LSP level: JSON without "jsonrpc", an array, bytes that are not JSON. Each is
    answered as JSON-RPC says where it can be (InvalidRequest to an id, ParseError), logged in one line, and the
    server reads on until the client's exit."""
    bodies = [b'{"bad": 1}', b'{"id": 7, "method": "x"}', b'{"jsonrpc": "2.0", "id": 8, "method": ', b'[1, 2]',
              b'{"jsonrpc": "2.0", "method": "exit"}']
    stream = b"".join(b"Content-Length: %d\r\n\r\n%s" % (len(body), body) for body in bodies)
    done = subprocess.run([sys.executable, "-m", "assistant", "lsp"], input=stream, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    replies = [json.loads(body) for body in re.split(rb"Content-Length: \d+\r\n(?:[^\r\n]+\r\n)*\r\n", done.stdout)
               if body]
    assert [(r.get("id"), r["error"]["code"]) for r in replies] == [(7, -32600), (None, -32700)]
    log = done.stderr.decode().splitlines()
    assert "Traceback" not in done.stderr.decode() and len(log) == 4, log  # one line each, nothing shown to the writer
    assert all(line.startswith("ghostwriter lsp: ") for line in log)


async def test_a_bad_setting_is_refused_at_initialize(client: LanguageClient, trained_model: Path):
    error = await error_of(start(client, trained_model, temperature=-1))
    assert error.code == -32602 and "temperature" in error.message


async def test_unconditional_sample_is_stored_and_shutdown_is_clean(client: LanguageClient, trained_model: Path):
    await start(client, trained_model, maxChars=50)
    answer = await client.workspace_execute_command_async(types.ExecuteCommandParams("ghostwriter.unconditional"))
    with Store() as store:
        sample = store.get(answer["sampleId"])
    assert sample.text == answer["text"] and len(sample.text) == 50 and sample.mode == "unconditional"
    assert sample.source == "editor"
    await client.shutdown_async(None)
    try:
        late_request = client.workspace_execute_command_async(types.ExecuteCommandParams("ghostwriter.unconditional"))
        late = await error_of(asyncio.wait_for(late_request, 20))
    finally:
        client.capabilities = None  # shut down here: the fixture must not ask again
        client.exit(None)
        await client._server.wait()
    assert late.code == -32600 and "shutting down" in late.message  # answered, not left hanging
    assert client._server.returncode == 0


async def test_the_server_exits_on_shutdown_while_a_generation_runs(client: LanguageClient, trained_model: Path):
    # an unconditional sample belongs to no document: only closing every job, not just the documents', stops it
    await start(client, trained_model, maxChars=10**7)
    running = asyncio.ensure_future(client.workspace_execute_command_async(
        types.ExecuteCommandParams("ghostwriter.unconditional")))
    await asyncio.sleep(1)  # the generation is under way (and would run for minutes)
    await client.shutdown_async(None)
    try:
        client.exit(None)
        await asyncio.wait_for(client._server.wait(), 10)
    finally:
        client.capabilities = None  # shut down here: the fixture must not ask again
        running.cancel()
    assert client._server.returncode == 0


def test_the_context_start_moves_in_steps_so_requests_share_their_prefix():
    from assistant.lsp.continuation import context
    from assistant.lsp.settings import Settings

    settings = Settings(context_chars=1000)
    text = "".join(chr(ord("a") + i % 26) for i in range(3000))
    assert context(text[:400], settings) == text[:400]
    typed = [context(text[:n], settings) for n in range(1001, 1251)]  # 250 characters typed at the end
    assert all(c.startswith(typed[0]) or typed[0].startswith(c) for c in typed)  # one start for all of them
    assert all(750 <= len(c) <= 1000 for c in typed) and typed[-1] == text[250:1250]
    assert context(text, Settings(context_chars=0)) == ""


def test_a_closed_document_lets_go_of_its_session_and_quantize_loads_the_model_again(gpt2_base: Path):
    from assistant.lsp.server import GhostwriterServer, did_close

    server = GhostwriterServer()
    model = server.model(str(gpt2_base), "none")
    assert model.precision == "float32" and server.model(str(gpt2_base), "none") is model
    session = server.session(URI, model)
    assert server.session(URI, model) is session  # the document's next request reuses it
    did_close(server, types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(URI)))
    assert server.session(URI, model) is not session
    int8_model = server.model(str(gpt2_base), "int8")
    assert int8_model.precision == "int8" and server.models.loaded() == [(str(gpt2_base), "int8")]
