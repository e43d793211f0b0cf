"""vLLM on GPU runners: the same client checks against vLLM's OpenAI-compatible server with the
profile's model. vLLM lives in its own environment (scripts/setup-vllm-env); pending on CPU."""
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from graders import paths
from graders.plugin import say
from graders.suites.inference import Server, grader_tokenizer

VLLM = Path(os.environ.get("COURSE_VLLM_ENV", paths.REPO_ROOT / "envs" / "vllm" / ".venv")) / "bin" / "vllm"
PORT = int(os.environ.get("COURSE_VLLM_PORT", "8765"))
NAME = "course-vllm"
STARTUP_S = 900  # a 7B model's first load (weights from the runner's cache) and CUDA graphs


@pytest.fixture(scope="module")
def vllm_server(profile):
    """vLLM's OpenAI server on the profile's model, started once for these checks and stopped after."""
    from common_utils.models import get_model_spec

    if not VLLM.is_file():
        pytest.fail(f"{VLLM} is missing: run scripts/setup-vllm-env on this runner", pytrace=False)
    spec = get_model_spec("llama", profile)
    if spec.hub_id is None:
        pytest.fail("vLLM needs a hub checkpoint: run with --profile full", pytrace=False)
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / "course-vllm.log", "w")
    process = subprocess.Popen([str(VLLM), "serve", spec.hub_id, "--revision", spec.revision or "main",
                                "--served-model-name", NAME, "--port", str(PORT), "--gpu-memory-utilization", "0.5",
                                "--max-model-len", "2048"], stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{PORT}", timeout_s=120)
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            try:
                if server.http.get("/v1/models").status_code == 200:
                    break
            except Exception:  # not listening yet
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vLLM did not come up (exit {process.poll()}); see {log.name}", pytrace=False)
            time.sleep(2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


PROMPT = "### Instruction:\nName three primary colours.\n\n### Response:\n"


@pytest.mark.gpu
@pytest.mark.check(points=1, title={"zh": "vLLM：/v1/models 與 usage", "en": "vLLM: /v1/models and usage"},
                   hint={"zh": "用 scripts/setup-vllm-env 建環境；prompt_tokens 與 tokenizer 的計數相同。",
                         "en": "Build the environment with scripts/setup-vllm-env; prompt_tokens equals the tokenizer's count."},
                   timeout=1200)
def test_vllm_models_and_usage(vllm_server, profile):
    ids = [m.id for m in vllm_server(vllm_server.client.models.list).data]
    assert ids == [NAME], say(f"vLLM 的模型列表是 {ids}。", f"vLLM lists {ids}.")
    got = vllm_server(vllm_server.client.completions.create, model=NAME, prompt=PROMPT, max_tokens=16, temperature=0)
    want = len(grader_tokenizer(profile)(PROMPT).input_ids)
    assert got.usage.prompt_tokens == want and got.usage.completion_tokens <= 16, say(
        f"usage {got.usage}；預期 prompt_tokens={want}。", f"usage {got.usage}; expected prompt_tokens={want}.")


@pytest.mark.gpu
@pytest.mark.check(points=1, title={"zh": "vLLM：串流與非串流相同，恰好一個結尾 chunk", "en": "vLLM: streamed equals non-streamed, one final chunk"},
                   hint={"zh": "temperature=0 的 greedy decoding。", "en": "Greedy decoding with temperature=0."}, timeout=1200)
def test_vllm_streaming(vllm_server):
    body = {"model": NAME, "prompt": PROMPT, "max_tokens": 32, "temperature": 0}
    whole = vllm_server(vllm_server.client.completions.create, **body).choices[0].text
    chunks = vllm_server(lambda: list(vllm_server.client.completions.create(stream=True, **body)))
    finals = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].finish_reason is not None]
    text = "".join(c.choices[0].text or "" for c in chunks if c.choices)
    assert text == whole and finals == [len(chunks) - 1], say(
        f"串流 {text!r}（結尾 chunk {finals}）與非串流 {whole!r}。", f"Streamed {text!r} (final chunks {finals}) vs {whole!r}.")


@pytest.mark.gpu
@pytest.mark.check(points=1, title={"zh": "vLLM：錯誤請求回 4xx、同時請求都回應", "en": "vLLM: bad requests get 4xx, concurrent requests answered"},
                   hint={"zh": "vLLM 自己驗證請求。", "en": "vLLM validates requests itself."}, timeout=1200)
def test_vllm_errors_and_concurrency(vllm_server):
    bad = vllm_server.http.post("/v1/completions", json={"model": NAME, "max_tokens": 4})
    assert 400 <= bad.status_code < 500, say(f"缺 prompt 時 vLLM 回 HTTP {bad.status_code}。",
                                             f"Without a prompt vLLM answered HTTP {bad.status_code}.")

    def ask(i):
        return vllm_server(vllm_server.client.completions.create, model=NAME, prompt=f"{PROMPT}{i}", max_tokens=8,
                           temperature=0).choices[0].text

    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(ask, range(8)))
    assert all(isinstance(t, str) for t in texts), say("有請求沒有回應。", "Some requests went unanswered.")
