"""The OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions.

Answers are OpenAI's shapes (`choices[].text` or `.message`,
`finish_reason`, `usage`, `logprobs` when asked for), streamed as
server-sent events `data: {json}` ending with `data: [DONE]`. Each choice and the answer carry a `ghostwriter`
field that clients ignore: the sample's id in the store, the passage it
copies from the corpus if any, whether it was cancelled, and the request's
fields not applied and values clamped (also in the X-Ghostwriter-* headers).

GPT-2 and char models are not chat models: a chat's messages are flattened
into one prompt (settings._messages says how) and the model continues it.
"""

import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from contract import modeldir
from contract.loop import Token

from ..serving.jobs import Stopped
from . import logprobs
from .errors import failure
from .generations import Choice, Piece, Run, start
from .replies import STREAM_HEADERS, body_json, client, event, extension, headers
from .service import Service
from .settings import read


async def models(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    return JSONResponse({"object": "list", "data": [_model(name) for name in service.names()]})


async def model(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    return JSONResponse(_model(service.resolve(request.path_params["name"])))  # 404 for one it does not have


def _model(name: str) -> dict[str, Any]:
    path = modeldir.find(name)
    created = modeldir.read(path).created if path is not None else None
    return {"id": name, "object": "model", "owned_by": "ghostwriter",
            "created": int(datetime.fromisoformat(created).timestamp()) if created else 0}


async def completions(request: Request) -> Response:
    return await _answer(request, "openai")


async def chat_completions(request: Request) -> Response:
    return await _answer(request, "chat")


async def _answer(request: Request, dialect: str) -> Response:
    service: Service = request.app.state.service
    settings = read(await body_json(request), dialect)
    run = start(service, settings, client(request))
    reply = Reply(run, dialect)
    if settings.stream:
        return StreamingResponse(reply.stream(), media_type="text/event-stream", headers={**STREAM_HEADERS,
                                                                                           **headers(settings)})
    return JSONResponse(reply.whole(await run.collect(request)), headers=headers(settings))


class Reply:
    """One request's answer in OpenAI's shapes: a completion's or a chat's, whole or as chunks."""

    def __init__(self, run: Run, dialect: str):
        self.run, self.settings, self.chat = run, run.settings, dialect == "chat"
        prefix, self.object = ("chatcmpl", "chat.completion") if self.chat else ("cmpl", "text_completion")
        self.id, self.created = f"{prefix}-{uuid.uuid4().hex}", int(time.time())
        self.offsets: dict[int, int] = {}  # a streamed completion's: where each choice's next token starts

    def whole(self, choices: list[Choice]) -> dict[str, Any]:
        return {**self._head(self.object), "choices": [self._choice(c) for c in choices], "usage": self._usage(choices),
                "ghostwriter": extension(self.settings, choices)}

    async def stream(self) -> AsyncIterator[str]:
        """The chunks as the model writes; a request stopped before its end (a shutdown) ends each open choice, and
        a failure (a model that cannot be loaded) is an `error` chunk, as OpenAI-compatible servers send one."""
        started: set[int] = set()
        ended: dict[int, Choice] = {}
        try:
            async for item in self.run.events():
                if item.index not in started:
                    started.add(item.index)
                    if opening := self._opening(item.index):
                        yield opening
                if isinstance(item, Piece):
                    yield event(self._chunk(item.index, item.text, None, tokens=item.tokens))
                else:
                    ended[item.index] = item
                    yield event(self._chunk(item.index, "", item.finish_reason, item.extension()))
        except Stopped:
            for index in range(self.settings.choices):
                if index not in ended:
                    ended[index] = self.run.partial(index)
                    yield event(self._chunk(index, "", "stop", ended[index].extension()))
        except Exception as e:
            yield event(failure(e).body())
            return
        if self.settings.include_usage:
            yield event({**self._head(self.object + ".chunk" if self.chat else self.object), "choices": [],
                         "usage": self._usage(list(ended.values()))})
        yield event("[DONE]")

    def _opening(self, index: int) -> str:
        """What comes before a choice's first piece: a chat's role, or the prompt when it is echoed."""
        if self.chat:
            return event({**self._head("chat.completion.chunk"), "choices": [
                {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]})
        self.offsets[index] = len(self._echoed(index))
        if self.settings.echo:
            return event(self._chunk(index, self._echoed(index), None))
        return ""

    def _chunk(self, index: int, text: str, finish_reason: str | None, extra: dict | None = None,
               tokens: tuple[Token, ...] = ()) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index, "logprobs": self._logprobs(tokens, self.offsets.get(index, 0))
                                  if tokens else None, "finish_reason": finish_reason}
        self.offsets[index] = self.offsets.get(index, 0) + sum(len(t.text) for t in tokens)
        if self.chat:
            choice["delta"] = {"content": text} if text or finish_reason is None else {}
        else:
            choice["text"] = text
        if extra is not None:
            choice["ghostwriter"] = extra
        return {**self._head("chat.completion.chunk" if self.chat else self.object), "choices": [choice]}

    def _choice(self, choice: Choice) -> dict[str, Any]:
        echoed = self._echoed(choice.index)
        found: dict[str, Any] = {"index": choice.index, "finish_reason": choice.finish_reason,
                                 "logprobs": None if self.settings.logprobs is None else
                                 self._logprobs(choice.tokens, len(echoed)), "ghostwriter": choice.extension()}
        if self.chat:
            found["message"] = {"role": "assistant", "content": choice.text}
        else:
            found["text"] = echoed + choice.text
        return found

    def _echoed(self, index: int) -> str:
        """What comes before a completion's text: its prompt when echoed (its tokens carry no probabilities)."""
        return self.settings.prompts[index // self.settings.n] if self.settings.echo and not self.chat else ""

    def _logprobs(self, tokens: tuple[Token, ...], offset: int) -> dict[str, Any]:
        return logprobs.chat(tokens) if self.chat else logprobs.completion(tokens, offset)

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.run.model}

    def _usage(self, choices: list[Choice]) -> dict[str, int]:
        prompt = sum(c.prompt_tokens for c in choices if c.index % self.settings.n == 0)
        written = sum(c.completion_tokens for c in choices)
        return {"prompt_tokens": prompt, "completion_tokens": written, "total_tokens": prompt + written}


ROUTES = [
    Route("/v1/models", models, methods=["GET"]),
    Route("/v1/models/{name:path}", model, methods=["GET"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
]
