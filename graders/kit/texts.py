"""The files of the student kit that are written rather than copied: pyproject, README, CI
workflow and the self-check notebook. Generic over assignments: each lists what it is given."""
from __future__ import annotations

import json

def kit_pyproject(project: dict) -> str:
    """The course's own dependencies (nbgrader brings JupyterLab); the dev extra without test tools."""
    deps = list(project["dependencies"])
    extras = {name: [r for r in reqs if not r.startswith("playwright")]
              for name, reqs in project.get("optional-dependencies", {}).items()}
    lines = [
        '[build-system]', 'requires = ["setuptools>=68"]', 'build-backend = "setuptools.build_meta"', '',
        '[project]', 'name = "llm-one-piece-student-kit"', f'version = "{project.get("version", "0.1.0")}"',
        'description = "LLM One Piece: the student kit (release notebooks and the visible checks)."',
        f'requires-python = "{project.get("requires-python", ">=3.10")}"',
        "dependencies = [", *[f'  "{d}",' for d in deps], "]", "",
        "[project.optional-dependencies]",
        *[f"{name} = {json.dumps(list(reqs))}" for name, reqs in extras.items()], "",
        "[project.scripts]", 'course = "graders.cli.main:entry"', "",
        "[tool.setuptools.packages.find]", 'include = ["common_utils*", "graders*"]', "",
        "[tool.setuptools.package-data]", 'common_utils = ["data/**/*", "**/*.safetensors", "**/*.json"]',
        'graders = ["reports/templates/*", "suites/**/*"]', "",
    ]
    return "\n".join(lines)


def _check_command(assignment: str, notebooks: list[str]) -> str:
    return f".venv/bin/course check release/{assignment}/{notebooks[0]} --feedback feedback/{assignment}"


def readme(assignments: dict[str, list[str]]) -> str:
    first = next(iter(assignments))
    rows = "\n".join(f"| `{a}` | {', '.join(f'`release/{a}/{n}`' for n in nbs)} |" for a, nbs in assignments.items())
    return f"""# LLM One Piece：學生套件 / student kit

## 繁體中文

這個資料夾是課程的學生版：作業 notebook（`release/`）、notebook 會 import 的 `common_utils`
（tokenizer、資料集、tiny 模型），以及評分時會跑的**公開**檢查。隱藏檢查與解答不在這裡。

兩個指令（Linux 或 macOS，Python 3.10 以上）：

```bash
scripts/bootstrap                                   # 安裝：建立 .venv/ 並安裝需要的套件
{_check_command(first, assignments[first])}   # 檢查我的 notebook
```

`course check` 會在全新的 kernel 中執行同一份作業的所有 notebook，再跑公開檢查，印出分數與提示，
並把回饋頁寫到 `feedback/<作業>/feedback.html`。同一份作業的任何一本 notebook 都可以當參數。

在 JupyterLab 裡：`.venv/bin/jupyter lab`，作答後先存檔（Ctrl+S），再打開 `self-check.ipynb`
執行對應作業的 cell，結果會顯示在 cell 下方，回饋頁在 `feedback/` 資料夾。

把這個資料夾推到你自己的 GitHub repository，`.github/workflows/self-check.yml` 會在每次 push
時跑同樣的檢查，並把回饋頁存成 artifact。測試 cell 請勿修改：正式評分時會還原並標記。

| 作業 | notebooks |
| --- | --- |
{rows}

## English

This folder is the students' side of the course: the assignment notebooks (`release/`), the
`common_utils` they import (tokenizer, datasets, tiny models) and the **visible** checks the
grader runs. Hidden checks and solutions are not here.

Two commands (Linux or macOS, Python 3.10+):

```bash
scripts/bootstrap                                   # set up: create .venv/ and install what is needed
{_check_command(first, assignments[first])}   # check my notebook
```

`course check` runs every notebook of the assignment in a fresh kernel, then the visible checks;
it prints the score and hints and writes a feedback page to `feedback/<assignment>/feedback.html`.
Any notebook of the assignment can be named.

In JupyterLab: `.venv/bin/jupyter lab`; save your notebook (Ctrl+S), open `self-check.ipynb` and
run the assignment's cell: the result shows under the cell, the feedback page lands in
`feedback/`. Push this folder to your own GitHub repository and
`.github/workflows/self-check.yml` runs the same checks on every push and keeps the feedback
pages as an artifact. Do not edit test cells: official grading restores them and flags the edit.
"""


def workflow() -> str:
    return """# The visible checks on every push of a student's fork; feedback pages kept as an artifact.
name: self-check
on:
  push:
  pull_request:
  workflow_dispatch:
jobs:
  check:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Sandbox (bubblewrap)
        run: sudo apt-get update && sudo apt-get install -y bubblewrap
      - name: Set up
        run: scripts/bootstrap
      - name: Check every assignment
        run: |
          for folder in release/*/; do
            assignment=$(basename "$folder")
            notebook=$(find "$folder" -maxdepth 1 -name '*.ipynb' | sort | head -n 1)
            .venv/bin/course check "$notebook" --feedback "feedback/$assignment" --lang en
            cat "feedback/$assignment/feedback.md" >> "$GITHUB_STEP_SUMMARY"
          done
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: feedback
          path: feedback/
"""


def _cell(kind: str, source: str, index: int) -> dict:
    cell = {"cell_type": kind, "id": f"self-check-{index}", "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def self_check_notebook(assignments: dict[str, list[str]]) -> str:
    """One cell per assignment that runs ``course check`` with this kernel's Python."""
    cells = [_cell("markdown", "# 自我檢查 / self-check\n\n先在作業 notebook 存檔（Ctrl+S），再執行該作業的 cell"
                               "（Shift+Enter）。回饋頁寫在 `feedback/<作業>/feedback.html`。\n\n"
                               "Save your notebook first (Ctrl+S), then run the assignment's cell (Shift+Enter). "
                               "The feedback page is written to `feedback/<assignment>/feedback.html`.", 0)]
    for a, notebooks in assignments.items():  # each cell stands alone: run only the one you need
        cells.append(_cell("code", f'# {a}\nimport sys\n\n!"{{sys.executable}}" -m graders check '
                                   f"release/{a}/{notebooks[0]} --feedback feedback/{a}", len(cells)))
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                      "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
