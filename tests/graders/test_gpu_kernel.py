"""A sandboxed kernel on a GPU runner: it can use the GPU (no address-space limit that stops CUDA,
the driver's variables and libraries), it starts cold, and its host memory is still bounded.
The parts that need no GPU run everywhere; the kernel that uses CUDA runs where a GPU is."""
from __future__ import annotations

import resource

import pytest

from graders.sandbox import KernelSession, SandboxPolicy, gpu, zygote
from graders.sandbox.limits import rlimits


def test_a_gpu_kernel_has_no_address_space_limit_and_the_rest_stays():
    cpu = dict(rlimits(SandboxPolicy(memory_mb=4096), None))
    cuda = dict(rlimits(SandboxPolicy(memory_mb=4096, gpu=True), None))
    assert cpu[resource.RLIMIT_AS] == 4096 * 2**20 and resource.RLIMIT_AS not in cuda
    assert {k: v for k, v in cpu.items() if k != resource.RLIMIT_AS} == cuda


def test_many_core_kernels_get_room_for_their_thread_pools():
    nproc = {threads: dict(rlimits(SandboxPolicy(max_processes=128, threads=threads), 12345))[resource.RLIMIT_NPROC]
             for threads in (2, 16)}
    assert nproc[2] == 128 + 16  # a small machine: as before
    assert nproc[16] >= 128 + 16 + 8 * 3 * 16  # 16 cores: the pools of every kernel of the submission fit


def test_gpu_kernels_start_cold():
    assert not zygote.usable(SandboxPolicy(gpu=True), use_bwrap=True)


def test_the_driver_variables_reach_a_gpu_kernel_only(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not for students")
    with_gpu = KernelSession(tmp_path, SandboxPolicy(gpu=True))._environment()
    without = KernelSession(tmp_path, SandboxPolicy())._environment()
    assert with_gpu["CUDA_VISIBLE_DEVICES"] == "0" and with_gpu["LD_LIBRARY_PATH"] == "/usr/local/nvidia/lib64"
    assert "CUDA_VISIBLE_DEVICES" not in without and "LD_LIBRARY_PATH" not in without
    assert "AWS_SECRET_ACCESS_KEY" not in with_gpu


def test_library_paths_join_in_order_without_repeats():
    assert gpu.join_library_path("/a:/b", "/b:/c", "") == "/a:/b:/c"


def needs_gpu(test):
    skip = pytest.mark.skipif(not gpu.available(), reason="needs a CUDA GPU: pending on CPU machines, run on GPU runners")
    return pytest.mark.gpu(skip(test))


def _gpu_cell(scratch, memory_mb: int, code: str):
    """Run ``code`` in a GPU kernel started as grading starts one; returns the cell's result."""
    session = KernelSession(scratch, SandboxPolicy(memory_mb=memory_mb, gpu=True, env=gpu.environment()))
    session.start()
    try:
        return session.execute(code, timeout=120)
    finally:
        session.close()


@needs_gpu
def test_a_sandboxed_kernel_computes_on_the_gpu(kernel_scratch):
    result = _gpu_cell(kernel_scratch, 8192, "import torch\nx = torch.randn(2048, 2048, device='cuda')\n"
                                             "print(torch.cuda.get_device_name(0), bool(torch.isfinite(x @ x).all()))")
    assert result.status == "ok", result.error
    assert result.stdout.strip().endswith("True")


@needs_gpu
def test_a_gpu_kernel_over_its_host_memory_is_stopped(kernel_scratch):
    # No RLIMIT_AS binds it: the sampler stops the tree once its private memory passes the limit.
    result = _gpu_cell(kernel_scratch, 2048, "import torch\ntorch.zeros(1, device='cuda')\n"
                                             "hog = [b'\\x01' * (256 * 2**20) for _ in range(16)]")
    assert result.status == "memory_limit", (result.status, result.error)

