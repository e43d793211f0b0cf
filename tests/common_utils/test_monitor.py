"""Parameter, memory and throughput reports."""
import time

from common_utils.models import load_model
from common_utils.monitor import ThroughputMeter, memory_report, parameter_report


def test_parameter_report_counts_trainable_and_total():
    model = load_model("gpt2")
    total = sum(p.numel() for p in model.parameters())
    model.transformer.wte.requires_grad_(False)
    report = parameter_report(model)
    assert report["total"] == total and report["trainable"] == total - model.transformer.wte.weight.numel()
    assert f"{report['trainable']:,}" in report["text"]


def test_memory_report_has_rss():
    assert memory_report()["rss_mib"] > 10


def test_throughput_meter_skips_warmup_steps():
    meter = ThroughputMeter(warmup_steps=1)
    for seconds in (0.2, 0.05, 0.05):
        with meter:
            time.sleep(seconds)
        meter.step(tokens=100, samples=4)
    report = meter.report()
    assert report["measured_steps"] == 2
    assert 1000 < report["tokens_per_s"] < 2100  # 200 tokens in ~0.1 s, not counting the 0.2 s warm-up
