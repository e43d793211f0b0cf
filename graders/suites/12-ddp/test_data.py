"""Part 3: the evaluation shards and the training sampler's epochs, on sizes the grader draws."""
import pytest
import torch

from graders.plugin import say

NB = "ddp"


@pytest.mark.check(points=2, cell="test-data", title={"zh": "評估切分：不重複、不遺漏（含不整除）",
                                                       "en": "evaluation shards: disjoint and covering, uneven sizes too"},
                   hint={"zh": "DistributedSampler 會重複樣本補齊；評估要自己切，例如 range(rank, n, world)。",
                         "en": "DistributedSampler repeats samples to pad; split by hand for evaluation, e.g. range(rank, n, world)."})
def test_shards_disjoint_and_cover(submission, rng):
    for world in (2, 3, 4):
        n = world * int(torch.randint(3, 30, (1,), generator=rng)) + int(torch.randint(1, world, (1,), generator=rng))
        shards = [submission.nb(NB).call("shard_indices", n, rank, world) for rank in range(world)]
        flat = [i for shard in shards for i in shard]
        repeated = sorted({i for i in flat if flat.count(i) > 1})
        missing = sorted(set(range(n)) - set(flat))
        assert not repeated and not missing and len(flat) == n, say(
            f"n={n}、world={world}：重複 {repeated[:5]}、遺漏 {missing[:5]}、總數 {len(flat)}。",
            f"n={n}, world={world}: repeated {repeated[:5]}, missing {missing[:5]}, total {len(flat)}.")
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1, say(f"n={n}、world={world}：各 rank 筆數 {sizes}，最多只能差 1。",
                                                 f"n={n}, world={world}: shard sizes {sizes} differ by more than 1.")


@pytest.mark.check(points=2, cell="test-data", title={"zh": "set_epoch：每個 epoch 重新洗牌，各 rank 不重疊",
                                                       "en": "set_epoch: a new order every epoch, ranks disjoint"},
                   hint={"zh": "每個 epoch 開始前 sampler.set_epoch(epoch)；所有 rank 用同一個 seed。",
                         "en": "Call sampler.set_epoch(epoch) before each epoch; every rank uses the same seed."})
def test_set_epoch_reshuffles(submission, rng):
    world, seed = 2, int(torch.randint(0, 1000, (1,), generator=rng))
    n = 2 * int(torch.randint(10, 40, (1,), generator=rng))
    epochs = {}
    for epoch in range(3):
        parts = [submission.nb(NB).call("epoch_indices", n, rank, world, epoch, seed) for rank in range(world)]
        assert sorted(parts[0] + parts[1]) == list(range(n)), say(
            f"第 {epoch} 個 epoch：兩個 rank 合起來不是 0…{n - 1} 各一次。",
            f"Epoch {epoch}: the two ranks together are not 0..{n - 1} once each.")
        epochs[epoch] = parts[0]
    assert len({tuple(v) for v in epochs.values()}) == 3, say(
        "rank 0 在第 0、1、2 個 epoch 讀到的順序有相同的：每個 epoch 前要呼叫 set_epoch。",
        "Rank 0 reads the same order in two of epochs 0, 1, 2: call set_epoch before each epoch.")
