"""03-server: the student's OpenAI-compatible server, checked through the official openai client
over the Unix socket the notebook's kernel listens on."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from graders.plugin import say
from graders.suites.inference import Server, expected_completion, grader_model, grader_tokenizer, greedy_alone

NB = "03-server"


def prompts(profile, rng, count: int) -> list[str]:
    """Instruction prompts from the course's data, drawn for this student."""
    from common_utils.datasets import load_course_dataset
    from common_utils.instruct import format_prompt

    rows = load_course_dataset("instructions", profile)
    return [format_prompt(rows[int(i)])[0] for i in torch.randperm(len(rows), generator=rng)[:count]]


@pytest.fixture
def connect(submission, assignment):
    """Connects inside the check, so that a server that is not there fails the check (not the grader)."""
    def connect() -> tuple[Server, str]:
        server = Server.on_socket(submission.nb(NB), assignment.settings["targets"]["client_timeout_s"])
        return server, submission.nb(NB).value("MODEL_NAME")

    return connect


def want_for(profile, prompt: str, max_tokens: int, stop_ids=()):
    tok = grader_tokenizer(profile)
    return expected_completion(profile, tok(prompt).input_ids, max_tokens, {tok.eos_token_id, *stop_ids})


def chat_prompt(profile, content: str) -> str:
    return grader_tokenizer(profile).apply_chat_template([{"role": "user", "content": content}],
                                                          add_generation_prompt=True, tokenize=False)


@pytest.mark.check(points=1, cell="test-server", title={"zh": "/v1/models 列出模型", "en": "/v1/models lists the model"},
                   hint={"zh": "回傳 {\"object\": \"list\", \"data\": [{\"id\": MODEL_NAME, \"object\": \"model\", ...}]}。",
                         "en": "Answer {\"object\": \"list\", \"data\": [{\"id\": MODEL_NAME, \"object\": \"model\", ...}]}."})
def test_models(connect):
    server, model_name = connect()
    ids = [m.id for m in server(server.client.models.list).data]
    assert ids == [model_name], say(f"模型列表應為 [{model_name!r}]，實際 {ids}。", f"The model list should be [{model_name!r}]; got {ids}.")


@pytest.mark.check(points=3, cell="test-server", title={"zh": "/v1/completions 的文字與 greedy decoding 相同",
                                                        "en": "/v1/completions text equals greedy decoding"},
                   hint={"zh": "greedy（argmax）、只回傳新產生的文字、skip_special_tokens=True、finish_reason 為 length。",
                         "en": "Greedy (argmax), only the new text, skip_special_tokens=True, finish_reason length."})
def test_completion_text(connect, profile, rng):
    server, model_name = connect()
    for prompt in prompts(profile, rng, 2):
        want = want_for(profile, prompt, 12)
        got = server(server.client.completions.create, model=model_name, prompt=prompt, max_tokens=12).choices[0]
        assert (got.text, got.finish_reason) == (want["text"], want["finish_reason"]), say(
            f"預期 {want['text']!r}（{want['finish_reason']}），實際 {got.text!r}（{got.finish_reason}）。",
            f"Expected {want['text']!r} ({want['finish_reason']}), got {got.text!r} ({got.finish_reason}).")


@pytest.mark.check(points=2, cell="test-server", title={"zh": "/v1/chat/completions 的回答與 greedy decoding 相同",
                                                        "en": "/v1/chat/completions answer equals greedy decoding"},
                   hint={"zh": "prompt 用 tokenizer.apply_chat_template(..., add_generation_prompt=True, tokenize=False)。",
                         "en": "Build the prompt with tokenizer.apply_chat_template(..., add_generation_prompt=True, tokenize=False)."},
                   visibility="hidden")
def test_chat_text(connect, profile, rng):
    server, model_name = connect()
    content = prompts(profile, rng, 1)[0]
    want = want_for(profile, chat_prompt(profile, content), 10)
    got = server(server.client.chat.completions.create, model=model_name, max_tokens=10,
                 messages=[{"role": "user", "content": content}]).choices[0]
    assert (got.message.role, got.message.content) == ("assistant", want["text"]), say(
        f"預期 assistant 回答 {want['text']!r}，實際 {got.message.role}：{got.message.content!r}。",
        f"Expected the assistant to answer {want['text']!r}; got {got.message.role}: {got.message.content!r}.")


@pytest.mark.check(points=2, cell="test-server", title={"zh": "usage 的 token 數正確", "en": "usage token counts are exact"},
                   hint={"zh": "prompt_tokens 是 prompt 的 token 數；completion_tokens 是產生的 token 數（含停止 token）。",
                         "en": "prompt_tokens counts the prompt; completion_tokens counts generated tokens (the stop token too)."},
                   visibility="hidden")
def test_usage(connect, profile, rng):
    server, model_name = connect()
    prompt = prompts(profile, rng, 1)[0]
    want = want_for(profile, prompt, 7)["usage"]
    got = server(server.client.completions.create, model=model_name, prompt=prompt, max_tokens=7).usage
    got = {k: getattr(got, k, None) for k in want}
    assert got == want, say(f"usage 應為 {want}，實際 {got}。", f"usage should be {want}; got {got}.")
    chat_want = want_for(profile, chat_prompt(profile, prompt), 5)["usage"]
    usage = server(server.client.chat.completions.create, model=model_name, max_tokens=5,
                   messages=[{"role": "user", "content": prompt}]).usage
    chat_got = {k: getattr(usage, k, None) for k in chat_want}
    assert chat_got == chat_want, say(f"chat 的 usage 應為 {chat_want}，實際 {chat_got}。",
                                      f"The chat usage should be {chat_want}; got {chat_got}.")


@pytest.mark.check(points=1, cell="test-server", title={"zh": "停止 token：finish_reason 為 stop", "en": "stop token: finish_reason is stop"},
                   hint={"zh": "產生 stop_token_ids 裡的 token 就停，finish_reason 為 stop，文字不含它。",
                         "en": "Stop at a token in stop_token_ids with finish_reason stop; leave it out of the text."},
                   visibility="hidden")
def test_finish_stop(connect, profile, rng):
    server, model_name = connect()
    prompt = prompts(profile, rng, 1)[0]
    tok = grader_tokenizer(profile)
    tokens = greedy_alone(grader_model(profile), tok(prompt).input_ids, 12, {tok.eos_token_id})
    stop = [tokens[min(2, len(tokens) - 1)]]  # a token the greedy run reaches: generation must stop there
    want = want_for(profile, prompt, 12, stop)
    got = server(server.client.completions.create, model=model_name, prompt=prompt, max_tokens=12,
                 extra_body={"stop_token_ids": stop})
    seen = (got.choices[0].text, got.choices[0].finish_reason, got.usage.completion_tokens)
    wanted = (want["text"], want["finish_reason"], want["usage"]["completion_tokens"])
    assert seen == wanted, say(f"stop_token_ids={stop}：預期（文字、finish_reason、completion_tokens）{wanted}，實際 {seen}。",
                               f"stop_token_ids={stop}: expected (text, finish_reason, completion_tokens) {wanted}; got {seen}.")


def streamed(server, create, **body):
    chunks = list(server(lambda: list(create(stream=True, **body))))
    finals = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].finish_reason is not None]
    return chunks, finals


@pytest.mark.check(points=2, cell="test-server", title={"zh": "串流：文字等於非串流、恰好一個結尾 chunk、[DONE]",
                                                        "en": "streaming: same text as non-streamed, one final chunk, [DONE]"},
                   hint={"zh": "每段 `data: <JSON>\\n\\n`；只有最後一段帶 finish_reason；最後送 `data: [DONE]`；不完整的字先不送。",
                         "en": "Each event is `data: <JSON>\\n\\n`; only the last carries finish_reason; end with `data: [DONE]`; "
                               "hold back incomplete characters."})
def test_streaming(connect, profile, rng):
    server, model_name = connect()
    prompt = prompts(profile, rng, 1)[0]
    body = {"model": model_name, "prompt": prompt, "max_tokens": 12}
    whole = server(server.client.completions.create, **body).choices[0].text
    chunks, finals = streamed(server, server.client.completions.create, **body)
    text = "".join(c.choices[0].text or "" for c in chunks if c.choices)
    assert text == whole, say(f"串流文字 {text!r} 與非串流 {whole!r} 不同。", f"Streamed text {text!r} differs from {whole!r}.")
    assert finals == [len(chunks) - 1], say(f"應恰好最後一個 chunk 帶 finish_reason；實際在第 {finals} 個（共 {len(chunks)} 個）。",
                                            f"Exactly the last chunk should carry finish_reason; found at {finals} of {len(chunks)}.")
    with server.http.stream("POST", "/v1/completions", json={**body, "stream": True}) as response:
        events = [line for line in server(lambda: list(response.iter_lines())) if line.strip()]
    assert events and events[-1].strip() == "data: [DONE]", say(f"串流最後一段應為 data: [DONE]，實際 {events[-1:]!r}。",
                                                                f"The stream should end with data: [DONE]; got {events[-1:]!r}.")
    messages = [{"role": "user", "content": prompt}]
    chat_whole = server(server.client.chat.completions.create, model=model_name, messages=messages, max_tokens=8)
    chunks, finals = streamed(server, server.client.chat.completions.create, model=model_name, messages=messages, max_tokens=8)
    chat_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chat_text == chat_whole.choices[0].message.content and finals == [len(chunks) - 1], say(
        f"chat 串流文字 {chat_text!r}（結尾 chunk {finals}）應等於 {chat_whole.choices[0].message.content!r} 且只有最後一段帶 finish_reason。",
        f"The chat stream {chat_text!r} (final chunks {finals}) should equal {chat_whole.choices[0].message.content!r} "
        "with finish_reason on the last chunk only.")


BAD_REQUESTS = [
    ("malformed JSON", b"{\"model\": ", None),
    ("missing prompt", None, {"max_tokens": 4}),
    ("max_tokens 0", None, {"prompt": "hi", "max_tokens": 0}),
    ("unknown model", None, {"prompt": "hi", "max_tokens": 4, "model": "no-such-model"}),
    ("prompt + max_tokens beyond the context", None, {"prompt": "hi", "max_tokens": 10**6}),
]


@pytest.mark.check(points=2, cell="test-server", title={"zh": "錯誤的請求回 4xx 與 error 內容", "en": "bad requests get 4xx with an error body"},
                   hint={"zh": "RequestValidationError 回 400；不存在的模型回 404；超過 context 回 400；內容為 {\"error\": {\"message\": ...}}。",
                         "en": "RequestValidationError -> 400; unknown model -> 404; beyond the context -> 400; "
                               "body {\"error\": {\"message\": ...}}."}, visibility="hidden")
def test_bad_requests(connect):
    server, model_name = connect()
    import httpx

    wrong = []
    for name, raw, body in BAD_REQUESTS:
        payload = {"model": model_name, **body} if body is not None else None
        try:
            response = (server.http.post("/v1/completions", content=raw, headers={"content-type": "application/json"})
                        if raw is not None else server.http.post("/v1/completions", json=payload))
        except httpx.HTTPError as err:
            wrong.append(f"{name}: {type(err).__name__}")
            continue
        try:
            error = response.json().get("error")
        except ValueError:
            error = None
        expect_404 = name == "unknown model"
        status_ok = response.status_code == 404 if expect_404 else response.status_code in (400, 422)
        if not (status_ok and isinstance(error, dict) and isinstance(error.get("message"), str)):
            wrong.append(f"{name}: HTTP {response.status_code} {response.text[:80]!r}")
    alive = server(server.http.post, "/v1/completions", json={"model": model_name, "prompt": "hi", "max_tokens": 1}).status_code == 200
    assert not wrong and alive, say(f"這些請求沒有得到正確的 4xx 與 error 內容：{wrong}；之後伺服器{'仍' if alive else '不再'}回應。",
                                    f"These requests did not get the right 4xx and error body: {wrong}; the server "
                                    f"{'still answers' if alive else 'stopped answering'} afterwards.")


@pytest.mark.check(points=1, cell="test-server", title={"zh": "同時多個請求都正確回應", "en": "concurrent requests are all answered"},
                   hint={"zh": "路由用一般的 def（FastAPI 會放到 thread pool），每個請求有自己的快取。",
                         "en": "Use plain def routes (FastAPI runs them in a thread pool); each request has its own cache."},
                   timeout=300)
def test_concurrent(connect, profile, rng):
    server, model_name = connect()
    batch = prompts(profile, rng, 6)
    wants = [want_for(profile, p, 8)["text"] for p in batch]

    def ask(prompt):
        return server(server.client.completions.create, model=model_name, prompt=prompt, max_tokens=8).choices[0].text

    with ThreadPoolExecutor(max_workers=len(batch)) as pool:
        gots = list(pool.map(ask, batch))
    bad = [i for i, (g, w) in enumerate(zip(gots, wants)) if g != w]
    assert not bad, say(f"同時送出時第 {bad} 個請求的回答不對。", f"Answered wrongly under concurrency: requests {bad}.")

