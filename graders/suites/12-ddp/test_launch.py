"""Part 1: a free port for every launch, never a fixed one."""
import secrets
from pathlib import Path

import pytest

from graders.plugin import say

NB = "ddp"
DEFAULT_PORT = "29500"  # torchrun's default when no --master_port is given
PROBE = "import os, pathlib, sys\npathlib.Path(sys.argv[1], 'port-' + os.environ['RANK']).write_text(os.environ['MASTER_PORT'])\n"


@pytest.mark.check(points=2, cell="test-launch", title={"zh": "每次啟動都用新的空 port", "en": "every launch gets a fresh free port"},
                   hint={"zh": "free_port() 要 bind 到 port 0 讓系統挑；launch 每次都呼叫它，不要寫死 port。",
                         "en": "free_port() binds port 0 and lets the system choose; launch calls it every time, never a fixed port."},
                   timeout=300)
def test_free_port(submission, harness, grader_tmp):
    handle = submission.nb(NB)
    ports = [handle.call("free_port") for _ in range(3)]
    assert len(set(ports)) == 3, say(f"連續三次 free_port() 回傳 {ports}：應由系統每次給一個空的 port。",
                                     f"Three calls of free_port() returned {ports}: let the system pick a free port each time.")
    probe = grader_tmp / "probe.py"
    probe.write_text(PROBE)
    token = secrets.token_hex(6)
    script = Path(submission.put(probe, f"grader_probe_{token}.py")).name
    folder = Path(submission.put(grader_tmp / "empty", f"grader-probe-{token}")).name
    handle.call("launch", script, [folder], 2, 120)
    seen = {handle.artifact_path(f"{folder}/port-{r}").read_text()[:10] if handle.artifact_path(f"{folder}/port-{r}").is_file()
            else "" for r in range(2)}
    first = harness.report(0)["master_port"]
    assert "" not in seen and len(seen) == 1, say(f"探測用的兩個 rank 沒有都啟動（看到的 port：{sorted(seen)}）。",
                                                   f"The probe's two ranks did not both start (ports seen: {sorted(seen)}).")
    second = seen.pop()
    assert DEFAULT_PORT not in (first, second) and first != second, say(
        f"兩次 launch 的 MASTER_PORT 是 {first} 與 {second}：每次都要用 free_port() 的新 port。",
        f"Two launches used MASTER_PORT {first} and {second}: use a fresh free_port() every time.")
