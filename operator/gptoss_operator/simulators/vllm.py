"""A vLLM-compatible simulator: vLLM's OpenAI API shapes, SSE framing and /metrics, with knobs.

Why not llm-d-inference-sim: ``go install github.com/llm-d/llm-d-inference-sim/cmd/...@v0.9.2``
is refused by the Go module proxy reachable here ("403 This module version is not available"),
so this simulator copies its knobs instead (docs/router.md, "Simulator").

Run: ``python -m gptoss_operator.simulators.vllm --port 0 --name local`` prints ``READY <port>`` once
listening. Behaviour is changed at runtime with ``POST /admin/config`` (a JSON object merged into
``Behaviour``; ``{"reset": true}`` first restores defaults) and observed with ``GET /admin/stats``.

Shapes follow vLLM (``model_dump_json``: compact JSON, unset fields omitted): chat chunks carry
``delta.reasoning`` (or ``reasoning_content`` when configured, like Baseten), the usage chunk has
``choices: []`` and comes only with ``stream_options.include_usage``, streams end with
``data: [DONE]``; Responses streams are ``event: <type>`` + ``data:`` with ``sequence_number``.
Output is deterministic (ids from a hash of the input, fixed ``created``) so two identical
requests produce identical bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import sys
from dataclasses import asdict, dataclass, field, fields
from typing import Any

CREATED = 1_700_000_000


@dataclass
class Behaviour:
    served_models: list[str] | None = None  # None: accept any model name
    output_tokens: int = 8
    reasoning_tokens: int = 2
    reasoning_field: str = "reasoning"
    latency: float = 0.0  # non-streaming: seconds before the answer
    ttft: float = 0.0  # streaming: seconds before the first token
    itl: float = 0.0  # streaming: seconds between tokens
    fail_status: int | None = None
    fail_count: int = -1  # how many requests fail (-1: all while fail_status/drop/hang is set)
    retry_after: str | None = None
    drop: bool = False  # close the connection without answering
    hang: bool = False  # never answer (until the client goes away)
    drop_after_tokens: int | None = None  # stream: close the connection after N tokens
    max_num_seqs: int = 256  # running at once; the rest wait (and show up as waiting)
    waiting: float | None = None  # /metrics overrides
    running: float | None = None
    kv_usage: float | None = None
    engines: int = 1
    deprecated_metrics: bool = False
    metrics_status: int = 200
    require_key: str | None = None
    reject_params: list[str] = field(default_factory=list)
    reject_reasoning_content_input: bool = False
    # vLLM's --max-model-len: prompt + max_tokens above it is refused with 400 (the prompt's
    # length is the simulator's token count, one token per whitespace-separated word).
    max_model_len: int | None = None


@dataclass
class Stats:
    requests: int = 0
    completed: int = 0
    cancelled: int = 0
    in_flight: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    last_body: Any = None
    last_headers: dict[str, str] = field(default_factory=dict)
    keys_seen: list[str] = field(default_factory=list)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Simulator:
    def __init__(self, name: str) -> None:
        self.name = name
        self.b = Behaviour()
        self.stats = Stats()
        self._failed = 0
        self._sem = asyncio.Semaphore(self.b.max_num_seqs)
        self._waiting = 0

    # --- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                if m["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "GET":
            await self._get(path, send)
            return
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        if path == "/admin/config":
            self._configure(json.loads(body))
            await _reply(send, 200, _dumps(asdict(self.b)))
            return
        if path == "/admin/reset-stats":
            self.stats = Stats()
            await _reply(send, 200, b"{}")
            return
        if path in ("/v1/chat/completions", "/v1/completions", "/v1/responses"):
            await self._api(path, scope, receive, send, body)
            return
        await _reply(send, 404, _error("not found", 404))

    def _configure(self, patch: dict[str, Any]) -> None:
        if patch.pop("reset", False):
            self.b = Behaviour()
            self._failed = 0
        names = {f.name for f in fields(Behaviour)}
        for k, v in patch.items():
            if k not in names:
                raise ValueError(f"unknown behaviour {k}")
            setattr(self.b, k, v)
        if "max_num_seqs" in patch:
            self._sem = asyncio.Semaphore(self.b.max_num_seqs)
        if any(k in patch for k in ("fail_status", "drop", "hang", "fail_count")):
            self._failed = 0

    async def _get(self, path: str, send: Any) -> None:
        if path == "/health":
            await _reply(send, 200, b"")
        elif path == "/metrics":
            await _reply(send, self.b.metrics_status, self._metrics().encode(), b"text/plain; version=0.0.4")
        elif path == "/v1/models":
            models = self.b.served_models or ["gpt-oss-20b"]
            data = [{"id": m, "object": "model", "created": CREATED, "owned_by": "vllm"} for m in models]
            await _reply(send, 200, _dumps({"object": "list", "data": data}))
        elif path == "/admin/stats":
            await _reply(send, 200, _dumps(asdict(self.stats)))
        else:
            await _reply(send, 404, _error("not found", 404))

    def _metrics(self) -> str:
        running = self.b.running if self.b.running is not None else self.stats.in_flight - self._waiting
        waiting = self.b.waiting if self.b.waiting is not None else self._waiting
        kv = (
            self.b.kv_usage
            if self.b.kv_usage is not None
            else min(1.0, running / max(1, self.b.max_num_seqs))
        )
        kv_name = "vllm:gpu_cache_usage_perc" if self.b.deprecated_metrics else "vllm:kv_cache_usage_perc"
        n = max(1, self.b.engines)
        label = (self.b.served_models or ["sim"])[0]
        lines = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
        ]
        for e in range(n):
            lines.append(f'vllm:num_requests_running{{engine="{e}",model_name="{label}"}} {running / n}')
        lines += [
            "# HELP vllm:num_requests_waiting Number of requests waiting.",
            "# TYPE vllm:num_requests_waiting gauge",
        ]
        for e in range(n):
            lines.append(f'vllm:num_requests_waiting{{engine="{e}",model_name="{label}"}} {waiting / n}')
        lines += [f"# TYPE {kv_name} gauge"]
        for e in range(n):
            lines.append(f'{kv_name}{{engine="{e}",model_name="{label}"}} {kv}')
        lines.append(f'vllm:prompt_tokens_total{{engine="0",model_name="{label}"}} 0.0')
        return "\n".join(lines) + "\n"

    # --- API ------------------------------------------------------------------------------
    async def _api(self, path: str, scope: dict[str, Any], receive: Any, send: Any, raw: bytes) -> None:
        st = self.stats
        st.requests += 1
        st.by_path[path] = st.by_path.get(path, 0) + 1
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        st.last_headers = {k: v for k, v in headers.items() if k not in ("authorization", "api-key")}
        auth = headers.get("authorization", headers.get("api-key", ""))
        st.keys_seen.append(auth.removeprefix("Bearer "))
        try:
            body = json.loads(raw)
        except ValueError:
            await _reply(send, 400, _error("invalid JSON", 400))
            return
        st.last_body = body
        b = self.b
        if b.require_key is not None and auth.removeprefix("Bearer ") != b.require_key:
            await _reply(send, 401, _error("invalid API key", 401))
            return
        bad = [p for p in b.reject_params if p in body]
        if bad:
            await _reply(send, 400, _error(f"unsupported parameters {bad}", 400))
            return
        if b.reject_reasoning_content_input and any(
            isinstance(m, dict) and "reasoning_content" in m for m in body.get("messages", [])
        ):
            await _reply(send, 400, _error("'reasoning_content' is not supported on input", 400))
            return
        if b.served_models is not None and body.get("model") not in b.served_models:
            await _reply(send, 404, _error(f"The model `{body.get('model')}` does not exist.", 404))
            return
        too_long = self._context_error(body)
        if too_long is not None:
            await _reply(send, 400, _error(too_long, 400))
            return
        if (b.fail_status is not None or b.drop or b.hang) and (
            b.fail_count < 0 or self._failed < b.fail_count
        ):
            self._failed += 1
            await self._fail(receive, send)
            return
        st.in_flight += 1
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            if self._sem.locked():
                self._waiting += 1
                try:
                    await self._sem.acquire()
                finally:
                    self._waiting -= 1
            else:
                await self._sem.acquire()
            try:
                ok = await self._answer(path, body, send, watcher, receive)
            finally:
                self._sem.release()
            if ok:
                st.completed += 1
            else:
                st.cancelled += 1
        finally:
            st.in_flight -= 1
            watcher.cancel()

    async def _fail(self, receive: Any, send: Any) -> None:
        b = self.b
        if b.hang:
            await _wait_disconnect(receive)
            self.stats.cancelled += 1
            return
        if b.drop:
            await _abort(receive)
            return
        extra = [(b"retry-after", b.retry_after.encode())] if b.retry_after else []
        await _reply(
            send,
            b.fail_status or 500,
            _error(f"injected failure from {self.name}", b.fail_status or 500),
            extra=extra,
        )

    async def _answer(
        self, path: str, body: dict[str, Any], send: Any, watcher: asyncio.Future[None], watcher_receive: Any
    ) -> bool:
        stream = bool(body.get("stream"))
        seed = hashlib.sha256(
            _dumps([path, body.get("messages"), body.get("prompt"), body.get("input")])
        ).hexdigest()
        if not stream:
            if self.b.latency and not await _sleep_unless(watcher, self.b.latency):
                return False
            await _reply(send, 200, _dumps(self._full(path, body, seed)))
            return True
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )
        events = self._events(path, body, seed)
        if self.b.ttft and not await _sleep_unless(watcher, self.b.ttft):
            return False
        for i, (ev, token) in enumerate(events):
            if watcher.done():
                return False
            if token and self.b.drop_after_tokens is not None and i > self.b.drop_after_tokens:
                await _abort(watcher_receive)
                return False
            await send({"type": "http.response.body", "body": ev, "more_body": True})
            if token and self.b.itl and not await _sleep_unless(watcher, self.b.itl):
                return False
        await send({"type": "http.response.body", "body": b""})
        return True

    # --- payloads -------------------------------------------------------------------------
    def _tokens(self) -> tuple[list[str], list[str]]:
        return [f"think{i} " for i in range(self.b.reasoning_tokens)], [
            f"tok{i} " for i in range(self.b.output_tokens)
        ]

    def _prompt_tokens(self, body: dict[str, Any]) -> int:
        text = json.dumps([body.get("messages"), body.get("prompt"), body.get("input")])
        return max(1, len(text.split()))

    def _context_error(self, body: dict[str, Any]) -> str | None:
        """vLLM's refusal of a request longer than --max-model-len (the wording of vLLM's
        OpenAIServing._validate_input), or None."""
        limit = self.b.max_model_len
        if limit is None:
            return None
        prompt = self._prompt_tokens(body)
        if prompt > limit:
            return (
                f"This model's maximum context length is {limit} tokens. However, your request has "
                f"{prompt} input tokens. Please reduce the length of the input messages."
            )
        wanted = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
        if isinstance(wanted, int) and prompt + wanted > limit:
            return (
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt + wanted} tokens ({prompt} in the messages, {wanted} in the completion). "
                "Please reduce the length of the messages or completion."
            )
        return None

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        p, c = self._prompt_tokens(body), self.b.output_tokens + self.b.reasoning_tokens
        return {"prompt_tokens": p, "total_tokens": p + c, "completion_tokens": c}

    def _full(self, path: str, body: dict[str, Any], seed: str) -> dict[str, Any]:
        reasoning, content = self._tokens()
        model = body.get("model")
        if path == "/v1/chat/completions":
            message: dict[str, Any] = {"role": "assistant", "content": "".join(content), "tool_calls": []}
            if reasoning:
                message[self.b.reasoning_field] = "".join(reasoning)
            choice = {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "stop",
                "stop_reason": None,
            }
            return {
                "id": f"chatcmpl-{seed[:24]}",
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "choices": [choice],
                "usage": self._usage(body),
            }
        if path == "/v1/completions":
            choice = {"index": 0, "text": "".join(content), "logprobs": None, "finish_reason": "stop"}
            return {
                "id": f"cmpl-{seed[:24]}",
                "object": "text_completion",
                "created": CREATED,
                "model": model,
                "choices": [choice],
                "usage": self._usage(body),
            }
        return self._response_obj(body, seed, "completed")

    def _response_obj(self, body: dict[str, Any], seed: str, status: str) -> dict[str, Any]:
        reasoning, content = self._tokens()
        done = status == "completed"
        output: list[dict[str, Any]] = []
        if done:
            output = [
                {
                    "id": f"rs_{seed[:16]}",
                    "type": "reasoning",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "".join(reasoning)}],
                },
                {
                    "id": f"msg_{seed[:16]}",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "".join(content), "annotations": []}],
                },
            ]
        u = self._usage(body)
        usage = {
            "input_tokens": u["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": u["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": self.b.reasoning_tokens},
            "total_tokens": u["total_tokens"],
        }
        return {
            "id": f"resp_{seed[:24]}",
            "object": "response",
            "created_at": CREATED,
            "model": body.get("model"),
            "status": status,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage if done else None,
        }

    def _events(self, path: str, body: dict[str, Any], seed: str) -> list[tuple[bytes, bool]]:
        """(event bytes, is a token event) in order."""
        reasoning, content = self._tokens()
        model = body.get("model")
        if path == "/v1/responses":
            return self._response_events(body, seed, content)
        chat = path == "/v1/chat/completions"
        base: dict[str, Any] = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{seed[:24]}",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": CREATED,
            "model": model,
        }
        out: list[tuple[bytes, bool]] = []

        def chunk(choice: dict[str, Any], token: bool) -> None:
            out.append((b"data: " + _dumps({**base, "choices": [choice]}) + b"\n\n", token))

        if chat:
            chunk(
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                },
                False,
            )
            for r in reasoning:
                chunk(
                    {
                        "index": 0,
                        "delta": {self.b.reasoning_field: r},
                        "logprobs": None,
                        "finish_reason": None,
                    },
                    True,
                )
        for i, t in enumerate(content):
            last = i == len(content) - 1
            if chat:
                chunk(
                    {
                        "index": 0,
                        "delta": {"content": t},
                        "logprobs": None,
                        "finish_reason": "stop" if last else None,
                    },
                    True,
                )
            else:
                chunk(
                    {"index": 0, "text": t, "logprobs": None, "finish_reason": "stop" if last else None}, True
                )
        opts = body.get("stream_options") or {}
        if opts.get("include_usage"):
            out.append(
                (b"data: " + _dumps({**base, "choices": [], "usage": self._usage(body)}) + b"\n\n", False)
            )
        out.append((b"data: [DONE]\n\n", False))
        return out

    def _response_events(
        self, body: dict[str, Any], seed: str, content: list[str]
    ) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        seq = 0

        def ev(kind: str, payload: dict[str, Any], token: bool = False) -> None:
            nonlocal seq
            data = {"type": kind, "sequence_number": seq, **payload}
            seq += 1
            out.append((f"event: {kind}\ndata: ".encode() + _dumps(data) + b"\n\n", token))

        msg_id = f"msg_{seed[:16]}"
        ev("response.created", {"response": self._response_obj(body, seed, "in_progress")})
        ev("response.in_progress", {"response": self._response_obj(body, seed, "in_progress")})
        item = {"id": msg_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        ev("response.output_item.added", {"output_index": 0, "item": item})
        part = {"type": "output_text", "text": "", "annotations": []}
        ev(
            "response.content_part.added",
            {"item_id": msg_id, "output_index": 0, "content_index": 0, "part": part},
        )
        for t in content:
            ev(
                "response.output_text.delta",
                {"item_id": msg_id, "output_index": 0, "content_index": 0, "delta": t, "logprobs": []},
                True,
            )
        text = "".join(content)
        ev(
            "response.output_text.done",
            {"item_id": msg_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []},
        )
        done_part = {"type": "output_text", "text": text, "annotations": []}
        ev(
            "response.content_part.done",
            {"item_id": msg_id, "output_index": 0, "content_index": 0, "part": done_part},
        )
        done_item = {**item, "status": "completed", "content": [done_part]}
        ev("response.output_item.done", {"output_index": 0, "item": done_item})
        ev("response.completed", {"response": self._response_obj(body, seed, "completed")})
        return out


async def _abort(receive: Any) -> None:
    """Drop the TCP connection as a crashing server would: no response, or a cut-off one.

    ASGI has no "abort"; uvicorn's ``receive`` is a bound method of the request cycle, whose
    ``transport`` we abort. Then yield so uvicorn sees the disconnect before the app returns
    (otherwise it would try to send a 500 on the dead connection).
    """
    transport = receive.__self__.transport
    transport.abort()
    for _ in range(3):
        await asyncio.sleep(0)


async def _wait_disconnect(receive: Any) -> None:
    while True:
        m = await receive()
        if m["type"] == "http.disconnect":
            return


async def _sleep_unless(watcher: asyncio.Future[None], seconds: float) -> bool:
    """Sleep; False if the client disconnected meanwhile."""
    done, _ = await asyncio.wait([watcher], timeout=seconds)
    return not done


def _error(message: str, code: int) -> bytes:
    return _dumps({"error": {"message": message, "type": "BadRequestError", "param": None, "code": code}})


async def _reply(
    send: Any,
    status: int,
    body: bytes,
    ctype: bytes = b"application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default="sim")
    p.add_argument("--config", default=None, help="initial behaviour as a JSON object")
    # vLLM's own flags, so a pod's `vllm serve` arguments map one to one (kind/podrunner.py).
    p.add_argument("--served-model-name", nargs="+", default=None, help="model names served (vLLM's flag)")
    p.add_argument(
        "--max-model-len", type=int, default=None, help="longest prompt + completion (vLLM's flag)"
    )
    p.add_argument("--ssl-certfile", default=None, help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--ssl-keyfile", default=None, help="private key of --ssl-certfile (PEM)")
    args = p.parse_args(argv)
    sim = Simulator(args.name)
    if args.config:
        sim._configure(json.loads(args.config))
    if args.served_model_name:
        sim._configure({"served_models": args.served_model_name})
    if args.max_model_len is not None:
        sim._configure({"max_model_len": args.max_model_len})
    serve(sim, args.host, args.port, args.ssl_certfile, args.ssl_keyfile)
    return 0


def serve(
    sim: Simulator, host: str, port: int, ssl_certfile: str | None = None, ssl_keyfile: str | None = None
) -> None:
    """Listen on host:port (0: any free port), print ``READY <port>``, serve until stopped."""
    import logging

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    # Listen before announcing READY: connections made meanwhile wait in the backlog until uvicorn
    # starts accepting (otherwise a fast first request, e.g. while TLS is set up, is refused).
    sock.listen(2048)
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # dropped connections are deliberate
    config = uvicorn.Config(
        sim,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="critical",
        timeout_keep_alive=75,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    server = uvicorn.Server(config)
    print(f"READY {bound}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
