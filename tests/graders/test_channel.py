"""The channel: values and calls cross as JSON and safetensors only, size-capped, failing closed."""
from __future__ import annotations

import json
import os

import pytest
import torch

from graders.channel import Channel, ChannelError, StudentError
from graders.channel.client import read_capped
from graders.sandbox import KernelSession, SandboxPolicy

NOTEBOOK = """
import torch
answer = {"lr": 0.001, "steps": [1, 2, 3], "name": "lora", "ok": True, "none": None}
weight = torch.arange(6, dtype=torch.float32).reshape(2, 3)
layer = torch.nn.Linear(3, 2)
def scale(x, factor=2.0):
    return x * factor
def boom():
    raise ValueError("rank must be positive")
class Sneaky:
    def __reduce__(self):
        return (os.system, ("echo pwned",))
sneaky = Sneaky()
"""


@pytest.fixture(scope="module")
def channel(module_kernel_scratch):
    session = KernelSession(module_kernel_scratch, SandboxPolicy(cell_timeout_s=30))
    session.start()
    assert session.execute(NOTEBOOK, 60).status == "ok"
    yield Channel(session)
    session.close()


def test_json_values_round_trip(channel):
    assert channel.value("answer") == {"lr": 0.001, "steps": [1, 2, 3], "name": "lora", "ok": True, "none": None}


def test_tensors_and_state_dicts_cross_as_safetensors(channel):
    assert torch.equal(channel.value("weight"), torch.arange(6, dtype=torch.float32).reshape(2, 3))
    state = channel.value("layer")
    assert set(state) == {"weight", "bias"} and state["weight"].shape == (2, 3)


def test_call_with_tensor_and_json_arguments(channel):
    x = torch.ones(2, 2)
    assert torch.equal(channel.call("scale", x, factor=3.0), 3 * x)
    assert channel.call("scale", 2, factor=5) == 10


def test_student_exception_is_a_student_error(channel):
    with pytest.raises(StudentError, match="ValueError: rank must be positive") as info:
        channel.call("boom")
    assert info.value.ename == "ValueError" and info.value.evalue == "rank must be positive"
    with pytest.raises(StudentError, match="NameError"):
        channel.value("not_defined")


def test_an_object_with_reduce_is_refused_not_pickled(channel):
    with pytest.raises(StudentError, match="TypeError: a value of type Sneaky cannot be sent to the grader"):
        channel.value("sneaky")


def test_forged_answers_with_non_json_types_are_refused(channel, tmp_path):
    folder = channel._folder()
    (folder / "response.json").write_text(json.dumps({"value": {"__tensor__": "t9"}}))
    with pytest.raises(ChannelError, match="refers to a tensor 't9' it did not send"):
        channel._answer(folder)
    (folder / "response.json").write_bytes(b"\x80\x04\x95pickle")
    with pytest.raises(ChannelError, match="the answer is not JSON"):
        channel._answer(folder)
    (folder / "response.json").write_text(json.dumps({"error": ["x"]}))
    with pytest.raises(ChannelError, match="the answer's error is not text"):
        channel._answer(folder)


def test_oversize_answer_is_an_error_not_a_read(channel):
    small = Channel(channel.session, max_bytes=1024)
    small._installed = True
    channel.session.execute("big = torch.zeros(10_000)", 30)
    with pytest.raises(ChannelError, match="over the 1,024-byte cap"):
        small.value("big")


def test_artifacts_stay_inside_scratch(channel):
    scratch = channel.session.scratch
    channel.session.execute("import json, os\njson.dump({'loss': 0.5}, open('metrics.json', 'w'))\n"
                            "os.symlink('/etc/passwd', 'passwd')\n"
                            "from safetensors.torch import save_file\nsave_file({'w': weight}, 'w.safetensors')", 30)
    assert channel.read_json("metrics.json") == {"loss": 0.5}
    assert torch.equal(channel.read_safetensors("w.safetensors")["w"], torch.arange(6.0).reshape(2, 3))
    assert channel.artifact_path("metrics.json") == (scratch / "metrics.json").resolve()
    with pytest.raises(ChannelError, match="points outside the scratch folder"):
        channel.artifact_path("passwd")
    with pytest.raises(ChannelError, match="is not a path inside the scratch folder"):
        channel.artifact_path("../x")
    with pytest.raises(ChannelError, match="is not a path inside the scratch folder"):
        channel.artifact_path("/etc/passwd")


def test_read_capped_does_not_follow_a_planted_link(tmp_path):
    (tmp_path / "response.json").symlink_to("/etc/passwd")
    with pytest.raises(ChannelError, match="no readable answer at response.json"):
        read_capped(tmp_path / "response.json")


def test_a_dead_kernel_fails_closed(kernel_scratch):
    session = KernelSession(kernel_scratch, SandboxPolicy())
    session.start()
    try:
        channel = Channel(session)
        session.execute("x = 1", 30)
        assert channel.value("x") == 1
        result = session.execute("import os; os._exit(1)", 30)
        assert result.status == "died" and "the kernel exited (status 1)" in result.error
        with pytest.raises(ChannelError, match="the kernel is not running"):
            channel.value("x")
    finally:
        session.close()
