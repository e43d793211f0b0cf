"""Shared by the 20-inference-serving suite: the grader's own model and tokenizer, prompts drawn
per student, and greedy decoding computed in the grader without any cache."""
from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=4)
def grader_model(profile: str, dtype: torch.dtype = torch.float32):
    from common_utils.models import load_model

    return load_model("llama", profile).eval().to(dtype)


@functools.lru_cache(maxsize=2)
def grader_tokenizer(profile: str):
    from common_utils.models import load_tokenizer

    return load_tokenizer(profile)


def random_prompts(rng: torch.Generator, tokenizer, count: int, low: int = 4, high: int = 12) -> list[list[int]]:
    """Token sequences of different lengths drawn for this student (no special tokens inside)."""
    first = max(tokenizer.all_special_ids) + 1
    lengths = (torch.randperm(high - low, generator=rng)[:count] + low).tolist()  # distinct: rows get padded
    return [torch.randint(first, len(tokenizer), (n,), generator=rng).tolist() for n in lengths]


@torch.no_grad()
def greedy_alone(model, prompt: list[int], max_new_tokens: int, stop_ids: set[int] = frozenset()) -> list[int]:
    """The model's greedy continuation of one unpadded prompt, computed without any cache."""
    ids = torch.tensor([prompt])
    out: list[int] = []
    for _ in range(max_new_tokens):
        token = int(model(input_ids=ids).logits[0, -1].argmax())
        out.append(token)
        if token in stop_ids:
            break
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return out


def expected_counts(new_tokens: int, k: int, wrong: set[int]) -> dict:
    """Proposals and acceptances of greedy speculative decoding with a draft that proposes the
    target's own token except at the positions in ``wrong``."""
    proposed = accepted = position = 0
    while position < new_tokens:
        m = min(k, new_tokens - position)
        agree = 0
        while agree < m and position + agree not in wrong:
            agree += 1
        proposed, accepted = proposed + m, accepted + agree
        position += agree + 1  # the accepted tokens, then the target's correction or bonus token
    return {"proposed": proposed, "accepted": accepted}


# --- the student's server, reached through the official openai client --------------------------
SOCKET = "serving.sock"


class Server:
    """An openai client and a raw httpx client on one OpenAI-compatible server.

    Every way the server can let the grader down (no socket, refused, timed out, a body that is
    not JSON) becomes an AssertionError that says so: that check fails, the others go on.
    """

    def __init__(self, base_url: str, timeout_s: float, uds: str | None = None):
        import httpx
        import openai

        transport = httpx.HTTPTransport(uds=uds) if uds else httpx.HTTPTransport()
        self.http = httpx.Client(transport=transport, base_url=base_url, timeout=timeout_s)
        self.client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="course", max_retries=0, timeout=timeout_s,
                                    http_client=httpx.Client(transport=transport, timeout=timeout_s))
        self.timeout_s = timeout_s

    @classmethod
    def on_socket(cls, handle, timeout_s: float) -> "Server":
        import stat

        from graders.plugin import say

        path = handle.artifact_path(SOCKET)
        if not path.exists():
            raise AssertionError(say(f"找不到 {SOCKET}：伺服器沒有啟動，或聽在別的地方（start-server cell 是否出錯？）。",
                                     f"{SOCKET} is missing: the server never started or listens elsewhere "
                                     "(did the start-server cell fail?)."))
        if not stat.S_ISSOCK(path.stat().st_mode):
            raise AssertionError(say(f"{SOCKET} 不是 Unix socket。", f"{SOCKET} is not a Unix socket."))
        return cls("http://course", timeout_s, uds=str(path))

    def __call__(self, what, *args, **kwargs):
        """Run one client call; turn a server that is down, hung or broken into a clear failure."""
        import httpx
        import openai

        from graders.plugin import say

        try:
            return what(*args, **kwargs)
        except (openai.APITimeoutError, httpx.TimeoutException):
            raise AssertionError(say(f"伺服器在 {self.timeout_s:g} 秒內沒有回應。",
                                     f"The server gave no answer within {self.timeout_s:g} s.")) from None
        except (openai.APIConnectionError, httpx.TransportError) as err:
            raise AssertionError(say(f"連不上伺服器：{err}", f"Could not reach the server: {err}")) from None
        except openai.APIStatusError as err:
            raise AssertionError(say(f"伺服器回傳 HTTP {err.status_code}：{err.response.text[:200]}",
                                     f"The server answered HTTP {err.status_code}: {err.response.text[:200]}")) from None
        except AssertionError:
            raise
        except Exception as err:  # noqa: BLE001  whatever the client trips on, it read from the server
            raise AssertionError(say(f"openai 客戶端讀不懂伺服器的回應（不是有效的 JSON／OpenAI 格式）：{type(err).__name__}: {err}",
                                     f"The openai client cannot read the server's answer (not valid JSON / OpenAI "
                                     f"format): {type(err).__name__}: {err}")) from None


def expected_completion(profile: str, prompt_ids: list[int], max_tokens: int, stop_ids: set[int]) -> dict:
    """What an OpenAI-compatible server must answer for greedy decoding, recomputed in the grader:
    the text without the stop token, its usage and finish_reason."""
    tokenizer = grader_tokenizer(profile)
    tokens = greedy_alone(grader_model(profile), prompt_ids, max_tokens, stop_ids)
    stopped = bool(tokens) and tokens[-1] in stop_ids
    text = tokenizer.decode(tokens[:-1] if stopped else tokens, skip_special_tokens=True)
    return {"text": text, "finish_reason": "stop" if stopped else "length",
            "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": len(tokens),
                      "total_tokens": len(prompt_ids) + len(tokens)}}
