"""Part 4: the ZeRO paper's memory formula, recomputed by the grader and compared with DeepSpeed's
own estimator on the `full` profile's model shapes (built on the meta device: no weights)."""
import pytest
import torch

from graders.plugin import say

NB = "zero"


def paper_bytes(psi: float, stage: int, world: int, k: float) -> float:
    return {0: (4 + k) * psi, 1: 4 * psi + k * psi / world, 2: 2 * psi + (2 + k) * psi / world, 3: (4 + k) * psi / world}[stage]


@pytest.mark.check(points=1, cell="test-memory", title={"zh": "ZeRO 各 stage 的記憶體公式", "en": "the ZeRO memory formula per stage"},
                   hint={"zh": "stage 1 只切優化器狀態、stage 2 再切 gradient、stage 3 連參數一起切。",
                         "en": "Stage 1 shards the optimizer state, stage 2 the gradients too, stage 3 the parameters as well."})
def test_formula_by_stage(submission, rng):
    psi = int(torch.randint(10**6, 10**10, (1,), generator=rng))
    k = float(torch.randint(8, 17, (1,), generator=rng))
    for stage in range(4):
        for world in (1, 2, 8, 64):
            got = submission.nb(NB).call("zero_model_state_bytes", psi, stage, world, k)
            want = paper_bytes(psi, stage, world, k)
            assert isinstance(got, (int, float)) and abs(got - want) <= 1e-9 * want, say(
                f"Ψ={psi:,}、stage {stage}、N={world}、K={k:g}：得到 {got!r}，應為 {want:,.0f} bytes。",
                f"Psi={psi:,}, stage {stage}, N={world}, K={k:g}: got {got!r}, expected {want:,.0f} bytes.")


def full_llama_shapes(assignment) -> tuple[int, int]:
    """(parameters, largest layer's parameters) of the full profile's Llama, from its config alone."""
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**assignment.settings["full_model"]["llama"]))
    psi = sum(p.numel() for p in model.parameters())
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    return psi, largest


@pytest.mark.check(points=1, cell="test-memory", title={"zh": "公式與 DeepSpeed 的估算一致（full profile 的 Llama）",
                                                         "en": "the formula agrees with DeepSpeed's estimator (full-profile Llama)"},
                   hint={"zh": "DeepSpeed 另外算 fp32 gradient：stage 2 用 K=16 時應與 estimate_zero2 相同。",
                         "en": "DeepSpeed also counts fp32 gradients: with K=16, stage 2 must match estimate_zero2."},
                   visibility="hidden", timeout=120)
def test_matches_deepspeed_estimator(submission, assignment):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    psi, largest = full_llama_shapes(assignment)
    for world in (1, 2, 4, 8):
        _, ds2 = estimate_zero2_model_states_mem_needs(psi, num_gpus_per_node=world, cpu_offload=False)
        got2 = submission.nb(NB).call("zero_model_state_bytes", psi, 2, world, 16)
        # DeepSpeed's stage 3 also keeps the largest layer gathered in fp32 (4 bytes per parameter).
        _, ds3, _ = estimate_zero3_model_states_mem_needs(psi, largest, num_gpus_per_node=world, cpu_offload=False)
        got3 = submission.nb(NB).call("zero_model_state_bytes", psi, 3, world, 14) + 4 * largest
        for stage, got, want in ((2, got2, ds2), (3, got3, ds3)):
            assert isinstance(got, (int, float)) and abs(got - want) <= 1, say(
                f"Ψ={psi:,}（full profile Llama）、N={world}、stage {stage}：你的公式 {got:,.0f} bytes，DeepSpeed 估算 {want:,} bytes。",
                f"Psi={psi:,} (full-profile Llama), N={world}, stage {stage}: your formula gives {got:,.0f} bytes, DeepSpeed estimates {want:,}.")
