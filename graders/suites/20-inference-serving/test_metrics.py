"""03-server: TTFT, TPOT and throughput computed by the student from timestamps the grader took
while loading the student's own server; checked against the grader's figures for the same run."""
import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from graders.plugin import say
from graders.suites.inference import Server, expected_completion, grader_tokenizer

NB = "03-server"


def grader_metrics(records: list[dict]) -> dict:
    ttft = [r["chunks"][0] - r["start"] for r in records]
    tpot = [(r["chunks"][-1] - r["chunks"][0]) / (r["tokens"] - 1) for r in records if r["tokens"] > 1]
    span = max(r["chunks"][-1] for r in records) - min(r["start"] for r in records)
    return {"ttft_s": sum(ttft) / len(ttft), "tpot_s": sum(tpot) / len(tpot) if tpot else 0.0,
            "throughput_tok_s": sum(r["tokens"] for r in records) / span}


def timed_stream(server, model_name: str, prompt: str, tokens: int) -> dict:
    record = {"start": time.perf_counter(), "chunks": [], "tokens": tokens}
    stream = server(server.client.completions.create, model=model_name, prompt=prompt, max_tokens=16, stream=True)
    server(lambda: list(_arrivals(stream, record)))
    if not record["chunks"]:
        raise AssertionError(say("串流沒有送出任何文字。", "The stream sent no text."))
    return record


def _arrivals(stream, record):
    for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            record["chunks"].append(time.perf_counter())
        yield chunk


@pytest.mark.check(points=2, cell="test-metrics", title={"zh": "TTFT、TPOT、吞吐量與 grader 的量測相同",
                                                         "en": "TTFT, TPOT and throughput match the grader's measurement"},
                   hint={"zh": "TTFT 取平均；TPOT 的分母是 tokens - 1，只算 tokens > 1；吞吐量用最早的 start 到最晚的最後一個 chunk。",
                         "en": "Average TTFT; TPOT divides by tokens - 1 over requests with tokens > 1; throughput spans "
                               "the earliest start to the latest last chunk."}, timeout=300,
                   visibility="hidden")  # recomputes with the solution's own lines: they stay out of the student kit
def test_serving_metrics(submission, assignment, profile):
    from common_utils.datasets import load_course_dataset
    from common_utils.instruct import format_prompt

    server = Server.on_socket(submission.nb(NB), assignment.settings["targets"]["client_timeout_s"])
    model_name = submission.nb(NB).value("MODEL_NAME")
    tok = grader_tokenizer(profile)
    rows = load_course_dataset("instructions", profile)[:4]
    load = []
    for row in rows:
        prompt = format_prompt(row)[0]
        load.append((prompt, expected_completion(profile, tok(prompt).input_ids, 16, {tok.eos_token_id})["usage"]["completion_tokens"]))
    with ThreadPoolExecutor(max_workers=len(load)) as pool:  # a fixed load: four concurrent streams
        records = list(pool.map(lambda item: timed_stream(server, model_name, *item), load))
    want = grader_metrics(records)
    got = submission.nb(NB).call("serving_metrics", records)
    rtol = assignment.settings["targets"]["metrics_rtol"]
    wrong = {k: (got.get(k) if isinstance(got, dict) else None, v) for k, v in want.items()
             if not (isinstance(got, dict) and isinstance(got.get(k), (int, float)) and math.isclose(got[k], v, rel_tol=rtol))}
    assert not wrong, say(f"這些指標與 grader 的量測不同（你的, grader 的）：{wrong}。",
                          f"These metrics differ from the grader's (yours, grader's): {wrong}.")
