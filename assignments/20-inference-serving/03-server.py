# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # 20-3 OpenAI 相容的推論伺服器（an OpenAI-compatible server）
#
# vLLM、TGI、llama.cpp 都提供和 OpenAI API 相同格式的 HTTP 介面，所以同一個 `openai` 客戶端可以換著用。
# 本 notebook 用 FastAPI 把 tiny Llama 包成這樣的伺服器：
# - `GET /v1/models`、`POST /v1/completions`、`POST /v1/chat/completions`；
# - `"stream": true` 時用 server-sent events（SSE）一段一段送出，最後送 `data: [DONE]`；
# - 錯誤的請求回 4xx 與 OpenAI 格式的錯誤內容，伺服器不能掛掉；
# - 最後由量測到的時間戳算出服務指標：TTFT、TPOT、吞吐量。
#
# 伺服器在 notebook 的 kernel 裡用 uvicorn 執行，聽在資料夾裡的 **Unix socket** `serving.sock`（不需要網路）；
# grader 從外面用官方 `openai` Python 客戶端經過這個 socket 連線檢查。kernel 停止時伺服器也跟著停止。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import threading
import time
import uuid
import warnings
from pathlib import Path

import httpx
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)
torch.set_num_threads(1)
PROFILE = get_profile()
MODEL_NAME = f"course-llama-{PROFILE}"
tokenizer = load_tokenizer(PROFILE)
MODEL = load_model("llama", PROFILE).eval()
CONTEXT = MODEL.config.max_position_embeddings
SOCKET = Path("serving.sock").resolve()


class CompletionRequest(BaseModel):
    model: str
    prompt: str
    max_tokens: int = Field(16, ge=1)
    stream: bool = False
    stop_token_ids: list[int] = []  # vLLM's extension: stop after any of these tokens (eos always stops)


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int = Field(16, ge=1)
    stream: bool = False
    stop_token_ids: list[int] = []


# %% [markdown] nbgrader={"grade": false, "grade_id": "stream-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 一次一個 token 的 greedy 生成
#
# `stream_generate(prompt_ids, max_tokens, stop_ids)`：generator，每產生一個 token 就 `yield` 它。
# 用 transformers 內建的快取：第一次呼叫 `MODEL(input_ids=..., use_cache=True)`，之後只餵新 token 並傳入
# `past_key_values=out.past_key_values`。產生 `stop_ids` 裡的 token（它也要 yield 出去）或滿 `max_tokens` 個就停。

# %% nbgrader={"grade": false, "grade_id": "stream-generate", "locked": false, "schema_version": 3, "solution": true, "task": false}
@torch.no_grad()
def stream_generate(prompt_ids: list[int], max_tokens: int, stop_ids: set[int]):
    ### BEGIN SOLUTION
    out = MODEL(input_ids=torch.tensor([prompt_ids]), use_cache=True)
    for _ in range(max_tokens):
        token = int(out.logits[0, -1].argmax())
        yield token
        if token in stop_ids:
            return
        out = MODEL(input_ids=torch.tensor([[token]]), past_key_values=out.past_key_values, use_cache=True)
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "deltas-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 逐段解碼文字
#
# 一個 BPE token 不一定是完整的字：一個中文字可能拆成兩三個 byte-level token。逐個 decode 再串起來會得到亂碼。
# `Generation` 的做法：每收到一個 token 就把 **目前全部** token 重新 decode（`skip_special_tokens=True`），
# 只送出比上次多出來的部分；結尾是 `"\ufffd"`（不完整的字）時先不送，等下一個 token。
# `finish()` 回傳剩下還沒送出的文字。停止用的 token（eos 或 `stop_ids`）不放進文字裡，但算在 `completion_tokens`。
# `finish_reason`：因停止 token 結束是 `"stop"`，產生滿 `max_tokens` 個是 `"length"`。

# %% nbgrader={"grade": false, "grade_id": "generation", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Generation:
    def __init__(self, prompt: str, max_tokens: int, stop_token_ids: list[int]):
        self.prompt_ids = tokenizer(prompt).input_ids
        self.stop_ids = {tokenizer.eos_token_id, *stop_token_ids}
        self.max_tokens = max_tokens
        self.tokens: list[int] = []
        self.sent = ""
        self.finish_reason: str | None = None

    def text(self) -> str:
        kept = [t for t in self.tokens if t not in self.stop_ids]
        return tokenizer.decode(kept, skip_special_tokens=True)

    def deltas(self):
        """Yield the new text after each token; set finish_reason at the end."""
        ### BEGIN SOLUTION
        for token in stream_generate(self.prompt_ids, self.max_tokens, self.stop_ids):
            self.tokens.append(token)
            text = self.text()
            if not text.endswith("\ufffd") and len(text) > len(self.sent):
                delta, self.sent = text[len(self.sent):], text
                yield delta
        self.finish_reason = "stop" if self.tokens and self.tokens[-1] in self.stop_ids else "length"
        ### END SOLUTION

    def finish(self) -> str:
        rest = self.text()[len(self.sent):]
        self.sent += rest
        return rest

    def usage(self) -> dict:
        ### BEGIN SOLUTION
        return {"prompt_tokens": len(self.prompt_ids), "completion_tokens": len(self.tokens),
                "total_tokens": len(self.prompt_ids) + len(self.tokens)}
        ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "app-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 路由（routes）
#
# - 錯誤：`error_response(status, message)` 回傳 `{"error": {"message": ..., "type": "invalid_request_error",
#   "param": None, "code": None}}`。請求格式不對（FastAPI 的 `RequestValidationError`）回 **400**；
#   `model` 不是 `MODEL_NAME` 回 **404**；prompt 的 token 數加 `max_tokens` 超過 `CONTEXT` 回 **400**。
# - 非串流：`/v1/completions` 回 `{"id", "object": "text_completion", "created", "model", "choices": [{"index": 0,
#   "text", "finish_reason", "logprobs": None}], "usage"}`；`/v1/chat/completions` 的 `object` 是 `"chat.completion"`，
#   choice 裡是 `"message": {"role": "assistant", "content": ...}`。chat 的 prompt 用
#   `tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)`。
# - 串流（SSE）：每段是 `data: <JSON>\n\n`；completions 的 chunk 用 `"text"`，chat 的 chunk（`"object":
#   "chat.completion.chunk"`）用 `"delta": {"content": ...}`（第一段另帶 `"role": "assistant"`）。
#   文字段的 `finish_reason` 是 `None`；最後 **恰好一段** 帶 `finish_reason`（與剩下的文字），再送 `data: [DONE]\n\n`。

# %% nbgrader={"grade": false, "grade_id": "app", "locked": false, "schema_version": 3, "solution": true, "task": false}
def error_response(status: int, message: str) -> JSONResponse:
    ### BEGIN SOLUTION
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": "invalid_request_error",
                                                               "param": None, "code": None}})
    ### END SOLUTION


def check_request(req) -> JSONResponse | None:
    """The error response for a request that cannot be served, else None."""
    ### BEGIN SOLUTION
    if req.model != MODEL_NAME:
        return error_response(404, f"model {req.model!r} does not exist; this server serves {MODEL_NAME!r}")
    return None
    ### END SOLUTION


def check_length(gen: Generation) -> JSONResponse | None:
    ### BEGIN SOLUTION
    if len(gen.prompt_ids) + gen.max_tokens > CONTEXT:
        return error_response(400, f"prompt ({len(gen.prompt_ids)} tokens) + max_tokens ({gen.max_tokens}) "
                                   f"exceeds the context of {CONTEXT} tokens")
    return None
    ### END SOLUTION


def sse(payload) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


def serve(gen: Generation, stream: bool, chat: bool):
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": MODEL_NAME}
    ### BEGIN SOLUTION
    if not stream:
        text = "".join(gen.deltas()) + gen.finish()
        choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": gen.finish_reason}
                  if chat else {"index": 0, "text": text, "finish_reason": gen.finish_reason, "logprobs": None})
        return {**head, "object": "chat.completion" if chat else "text_completion", "choices": [choice],
                "usage": gen.usage()}

    def piece(text, finish_reason, first=False):
        if chat:
            delta = {"role": "assistant", "content": text} if first else {"content": text}
            return {**head, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        return {**head, "object": "text_completion",
                "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}]}

    def events():
        first = True
        for delta in gen.deltas():
            yield sse(piece(delta, None, first))
            first = False
        yield sse(piece(gen.finish(), gen.finish_reason, first))
        yield sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream")
    ### END SOLUTION


def build_app() -> FastAPI:
    app = FastAPI()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        ### BEGIN SOLUTION
        return error_response(400, "invalid request: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        ### END SOLUTION

    @app.get("/v1/models")
    def models():
        ### BEGIN SOLUTION
        return {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "course"}]}
        ### END SOLUTION

    @app.post("/v1/completions")
    def completions(req: CompletionRequest):
        ### BEGIN SOLUTION
        gen = Generation(req.prompt, req.max_tokens, req.stop_token_ids)
        return check_request(req) or check_length(gen) or serve(gen, req.stream, chat=False)
        ### END SOLUTION

    @app.post("/v1/chat/completions")
    def chat_completions(req: ChatRequest):
        ### BEGIN SOLUTION
        prompt = tokenizer.apply_chat_template([m.model_dump() for m in req.messages], add_generation_prompt=True,
                                               tokenize=False)
        gen = Generation(prompt, req.max_tokens, req.stop_token_ids)
        return check_request(req) or check_length(gen) or serve(gen, req.stream, chat=True)
        ### END SOLUTION

    return app


# %% nbgrader={"grade": false, "grade_id": "start-server", "locked": true, "schema_version": 3, "solution": false, "task": false}
def start_server(app: FastAPI, path: Path, timeout_s: float = 30.0) -> uvicorn.Server:
    """Serve `app` on the Unix socket `path` from a daemon thread: it lives and dies with this kernel."""
    path.unlink(missing_ok=True)
    server = uvicorn.Server(uvicorn.Config(app, uds=str(path), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, name="uvicorn", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start within {timeout_s:g} s")
        time.sleep(0.05)
    return server


SERVER = start_server(build_app(), SOCKET)
client = httpx.Client(transport=httpx.HTTPTransport(uds=str(SOCKET)), base_url="http://course", timeout=30)
print(client.get("/v1/models").json())
print(client.post("/v1/completions", json={"model": MODEL_NAME, "prompt": "Hello", "max_tokens": 8}).json())

# %% nbgrader={"grade": true, "grade_id": "test-server", "locked": true, "points": 14, "schema_version": 3, "solution": false, "task": false}
_r = client.post("/v1/completions", json={"model": MODEL_NAME, "prompt": "Hello", "max_tokens": 5})
assert _r.status_code == 200, f"/v1/completions 回傳 {_r.status_code}：{_r.text[:200]}"
assert _r.json()["usage"]["completion_tokens"] <= 5, "completion_tokens 不應超過 max_tokens"
with client.stream("POST", "/v1/completions", json={"model": MODEL_NAME, "prompt": "Hello", "max_tokens": 5, "stream": True}) as _s:
    _lines = [line for line in _s.iter_lines() if line]
assert _lines[-1] == "data: [DONE]", "串流最後一段應為 data: [DONE]"
_streamed = "".join(json.loads(line[6:])["choices"][0]["text"] for line in _lines[:-1])
assert _streamed == _r.json()["choices"][0]["text"], "串流文字接起來應等於非串流的文字"
_bad = client.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
assert 400 <= _bad.status_code < 500 and "error" in _bad.json(), "格式錯誤的請求應回 4xx 與 error 內容"

# %% [markdown] nbgrader={"grade": false, "grade_id": "metrics-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. 服務指標（serving metrics）
#
# 對一批串流請求，每個請求記下 `{"start": 送出時間, "chunks": [每個有文字的 chunk 抵達的時間], "tokens":
# completion_tokens}`（秒，同一個時鐘）。請算：
# - **TTFT**（time to first token）：`chunks[0] - start`，對所有請求取平均 → `"ttft_s"`；
# - **TPOT**（time per output token）：`(chunks[-1] - chunks[0]) / (tokens - 1)`，只算 `tokens > 1` 的請求，
#   取平均 → `"tpot_s"`；
# - **吞吐量**：所有請求的 `tokens` 總和 ÷（最晚的 `chunks[-1]` − 最早的 `start`）→ `"throughput_tok_s"`。
#
# grader 會自己對你的伺服器送一批請求、記下時間戳，交給你的函式，再和它自己算的結果比對。

# %% nbgrader={"grade": false, "grade_id": "metrics", "locked": false, "schema_version": 3, "solution": true, "task": false}
def serving_metrics(records: list[dict]) -> dict:
    ### BEGIN SOLUTION
    ttft = [r["chunks"][0] - r["start"] for r in records]
    tpot = [(r["chunks"][-1] - r["chunks"][0]) / (r["tokens"] - 1) for r in records if r["tokens"] > 1]
    span = max(r["chunks"][-1] for r in records) - min(r["start"] for r in records)
    return {"ttft_s": sum(ttft) / len(ttft), "tpot_s": sum(tpot) / len(tpot) if tpot else 0.0,
            "throughput_tok_s": sum(r["tokens"] for r in records) / span}
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "load", "locked": true, "schema_version": 3, "solution": false, "task": false}
def timed_stream(prompt: str, max_tokens: int) -> dict:
    record = {"start": time.perf_counter(), "chunks": [], "tokens": 0}
    body = {"model": MODEL_NAME, "prompt": prompt, "max_tokens": max_tokens, "stream": True}
    with client.stream("POST", "/v1/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["text"]:
                record["chunks"].append(time.perf_counter())
    record["tokens"] = client.post("/v1/completions", json={**body, "stream": False}).json()["usage"]["completion_tokens"]
    return record


RECORDS = [timed_stream(p, 16) for p in ("Hello", "### Instruction:\nSay hi\n\n### Response:\n")]
print(serving_metrics(RECORDS))

# %% nbgrader={"grade": true, "grade_id": "test-metrics", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
_m = serving_metrics([{"start": 0.0, "chunks": [0.5, 0.7, 0.9], "tokens": 3}, {"start": 0.1, "chunks": [0.3, 1.1], "tokens": 5}])
assert abs(_m["ttft_s"] - 0.35) < 1e-9, f"TTFT 應為 0.35，實際 {_m['ttft_s']}"
assert abs(_m["tpot_s"] - (0.2 + 0.2) / 2) < 1e-9, f"TPOT 應為 0.2，實際 {_m['tpot_s']}"
assert abs(_m["throughput_tok_s"] - 8 / 1.1) < 1e-9, f"吞吐量應為 {8 / 1.1:.4f}，實際 {_m['throughput_tok_s']}"
