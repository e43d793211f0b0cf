"""Parts 4-6, run by the grader's harness under torchrun and compared with the grader's own
single-process run: broadcast, hand-written all-reduce, DDP accumulation, checkpoint, teardown."""
import importlib

import pytest

from graders.plugin import say

support = importlib.import_module("graders.suites.12-ddp.support")
ATOL, STEPS, max_difference, single_process = support.ATOL, support.STEPS, support.max_difference, support.single_process

CELL = "test-train"
RANKS = (0, 1)


def _equal_to_single_process(harness, phase: str, accumulate: bool, what: tuple[str, str]) -> None:
    want = single_process(harness.seed, accumulate)
    for rank in RANKS:
        diff = max_difference(harness.tensors(rank, phase), want, what[1])
        assert diff <= ATOL, say(f"{what[0]}：rank {rank} 的權重與單一 process 用整個 batch 訓練的結果差 {diff:.2e}"
                                 f"（容許 {ATOL:.0e}）。",
                                 f"{what[1]}: rank {rank}'s weights differ from a single-process run on the whole "
                                 f"batch by {diff:.2e} (tolerance {ATOL:.0e}).")


@pytest.mark.check(points=2, cell=CELL, title={"zh": "broadcast 用 rank 0 的權重覆蓋各 rank", "en": "broadcast overwrites every rank with rank 0's weights"},
                   hint={"zh": "每個參數都要從 rank 0 廣播出去（dist.broadcast，src 是 0）。", "en": "Broadcast every parameter from rank 0 (dist.broadcast with src 0)."},
                   timeout=300)
def test_broadcast_overwrites_init(harness):
    from common_utils.distributed import toy_model

    want = support.harness_module.params(toy_model(harness.seed + 1))  # rank 0's init; rank 1 started elsewhere
    for rank in RANKS:
        diff = max_difference(harness.tensors(rank, "broadcast"), want, "broadcast")
        assert diff == 0, say(f"broadcast 之後 rank {rank} 的權重與 rank 0 的初始權重差 {diff:.3g}（應完全相同）。",
                              f"After the broadcast, rank {rank}'s weights differ from rank 0's init by {diff:.3g} (must be equal).")


@pytest.mark.check(points=2, cell=CELL, title={"zh": "手寫 all-reduce：k 步後等於單一 process", "en": "hand-written all-reduce: k steps equal a single process"},
                   hint={"zh": "all_reduce 是加總：除以 world size 才是平均；先 broadcast 再訓練。",
                         "en": "all_reduce sums: divide by the world size for the mean; broadcast before training."},
                   timeout=300)
def test_manual_equals_single_process(harness):
    _equal_to_single_process(harness, "manual", False, ("手寫同步", "hand-synchronised training"))


@pytest.mark.check(points=2, cell=CELL, title={"zh": "每步每個參數一次 all-reduce", "en": "one all-reduce per parameter per step"},
                   hint={"zh": "只 all-reduce gradient，每個參數（或每個 bucket）一次；參數本身不需要再同步。",
                         "en": "All-reduce gradients only, once per parameter (or bucket); the weights need no extra sync."},
                   visibility="hidden", timeout=300)
def test_allreduce_once_per_parameter(harness):
    for rank in RANKS:
        report = harness.report(rank)
        calls, limit = report["allreduce_per_step"], report["grad_tensors"]
        assert len(calls) == STEPS and all(1 <= c <= limit for c in calls), say(
            f"rank {rank} 每步呼叫 all_reduce 的次數是 {calls}，應介於 1（一個 bucket）與 {limit}（每個參數一次）。",
            f"Rank {rank} called all_reduce {calls} times per step; expected between 1 (one bucket) and {limit} (one per parameter).")


@pytest.mark.check(points=2, cell=CELL, title={"zh": "DDP + 累積梯度等於大 batch 的一步", "en": "DDP with accumulation equals the large-batch step"},
                   hint={"zh": "每個 micro-batch 的 loss 除以 micro-batch 數再 backward。",
                         "en": "Divide each micro-batch's loss by the number of micro-batches before backward."},
                   timeout=300)
def test_accumulation_equals_large_batch(harness):
    _equal_to_single_process(harness, "accumulation", True, ("DDP 累積梯度", "DDP accumulation"))


@pytest.mark.check(points=1, cell=CELL, title={"zh": "no_sync：每個 optimizer step 只通訊一次", "en": "no_sync: one synchronisation per optimizer step"},
                   hint={"zh": "除了最後一個 micro-batch，backward 都包在 ddp_model.no_sync() 裡。",
                         "en": "Wrap every backward but the last micro-batch's in ddp_model.no_sync()."},
                   visibility="hidden", timeout=300)
def test_no_sync_communicates_once(harness):
    report = harness.report(0)
    if report["errors"].get("accumulation"):
        raise AssertionError(say(f"累積梯度階段出錯：{report['errors']['accumulation']}",
                                 f"The accumulation phase failed: {report['errors']['accumulation']}"))
    per_sync, per_step = report["buckets_per_sync"], report["buckets_per_step"]
    assert per_step == [per_sync] * STEPS, say(
        f"每個 optimizer step 的 all-reduce bucket 數是 {per_step}，一次同步只要 {per_sync} 個。",
        f"Buckets all-reduced per optimizer step: {per_step}; one synchronisation takes {per_sync}.")


@pytest.mark.check(points=2, cell=CELL, title={"zh": "只有 rank 0 寫 checkpoint，內容是訓練後的權重", "en": "only rank 0 writes the checkpoint, holding the trained weights"},
                   hint={"zh": "if dist.get_rank() == 0 才存；DDP 模型先取 .module；存完 barrier。",
                         "en": "Save only when dist.get_rank() == 0; unwrap .module first; barrier afterwards."},
                   timeout=300)
def test_rank0_writes_checkpoint(harness):
    for rank in RANKS:
        harness.report(rank)  # the run finished
    error = harness.report(0)["errors"].get("checkpoint")
    assert not error, say(f"save_checkpoint 出錯：{error}", f"save_checkpoint failed: {error}")
    written = [rank for rank in RANKS if harness.handle.artifact_path(f"{harness.folder}/ckpt-rank{rank}/ckpt/model.safetensors").exists()]
    assert written == [0], say(f"寫了 checkpoint 的 rank：{written}，應只有 [0]。", f"Ranks that wrote the checkpoint: {written}; only [0] should.")
    saved = harness.handle.read_safetensors(f"{harness.folder}/ckpt-rank0/ckpt/model.safetensors")
    diff = max_difference(saved, harness.tensors(0, "accumulation"), "checkpoint")
    assert diff == 0, say(f"checkpoint 與 rank 0 訓練後的權重差 {diff:.3g}。", f"The checkpoint differs from rank 0's trained weights by {diff:.3g}.")


@pytest.mark.check(points=1, cell=CELL, title={"zh": "結束時拆掉 process group", "en": "the process group is destroyed at the end"},
                   hint={"zh": "teardown() 呼叫 dist.destroy_process_group()。", "en": "teardown() calls dist.destroy_process_group()."},
                   timeout=300)
def test_process_group_destroyed(harness):
    for rank in RANKS:
        report = harness.report(rank)
        assert not report["errors"].get("teardown") and report["initialized_after_teardown"] is False, say(
            f"rank {rank} 在 teardown() 之後 process group 仍在（{report['errors'].get('teardown') or '仍 initialized'}）。",
            f"Rank {rank}'s process group still exists after teardown() ({report['errors'].get('teardown') or 'still initialized'}).")


@pytest.mark.gpu(count=2)  # pending on a runner with fewer
@pytest.mark.check(points=2, title={"zh": "NCCL：DDP 累積梯度等於單一 process", "en": "NCCL: DDP accumulation equals a single process"},
                   hint={"zh": "GPU 上 setup() 用 nccl 並 set_device(LOCAL_RANK)；wrap_ddp 給 device_ids。",
                         "en": "On GPUs setup() uses nccl and set_device(LOCAL_RANK); wrap_ddp passes device_ids."},
                   timeout=300)
def test_nccl_accumulation(harness):
    assert harness.report(0)["backend"] == "nccl", say("GPU 上應使用 nccl backend。", "Use the nccl backend on GPUs.")
    want = single_process(harness.seed, accumulate=True)
    diff = max_difference(harness.tensors(0, "accumulation"), want, "NCCL")
    assert diff <= 1e-5, say(f"NCCL 結果與單一 process 差 {diff:.2e}。", f"The NCCL run differs from a single process by {diff:.2e}.")
