"""Write the sample classes that `course demo` grades (committed under samples/).

Each sample is the student release answered as a real student might: one right, one partly
right, one that crashes half-way, one that edits a test cell. Run after `course release`:

    .venv/bin/python scripts/make_samples.py
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from graders.release.fill import filled_release

ROOT = Path(__file__).resolve().parent.parent

BASICS = {
    "alice": {},  # the reference answers
    "bob": {"basics.ipynb": {  # sample variance; bias always counted; ignores trainable_only
        "standardize": "def standardize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:\n"
                       "    return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps)",
        "param-count": "def linear_param_count(d_in: int, d_out: int, bias: bool = True) -> int:\n"
                       "    return d_in * d_out + d_out\n\n\n"
                       "def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:\n"
                       "    return sum(p.numel() for p in model.parameters())"}},
    "carol": {"basics.ipynb": {  # fc2 takes the wrong input size: everything after it breaks
        "tiny-mlp": "class TinyMLP(nn.Module):\n"
                    "    def __init__(self, d_in: int, d_hidden: int, d_out: int):\n"
                    "        super().__init__()\n"
                    "        self.fc1 = nn.Linear(d_in, d_hidden)\n"
                    "        self.fc2 = nn.Linear(d_in, d_out)\n\n"
                    "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
                    "        return self.fc2(torch.relu(self.fc1(x)))",
        "param-count": "# TODO\nraise NotImplementedError()"}},
    "dave": {"basics.ipynb": {  # returns x unchanged, then 'fixes' the test that caught it
        "standardize": "def standardize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:\n    return x - x.mean(-1, keepdim=True)",
        "test-standardize": "# the test is too strict\nassert True"}},
}

LORA = {
    "alice": {},
    "bob": {  # alpha instead of alpha/r, and the prompt is not masked
        "02-train.ipynb": {"lora-layer": None},
        "01-setup.ipynb": {"build-example": (
            "IGNORE_INDEX = -100\n\n\n"
            "def build_example(prompt_ids: list[int], response_ids: list[int], eos_id: int, max_length: int) -> dict:\n"
            "    input_ids = (list(prompt_ids) + list(response_ids) + [eos_id])[:max_length]\n"
            "    return {\"input_ids\": input_ids, \"labels\": list(input_ids), \"attention_mask\": [1] * len(input_ids)}")}},
    "carol": {  # the training loop has a typo: 02-train crashes half-way, no adapter is saved
        "02-train.ipynb": {"train-loop": (
            "def train(model: nn.Module, batches: list[dict], max_steps: int, lr: float) -> list[float]:\n"
            "    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)\n"
            "    model.train()\n"
            "    losses = []\n"
            "    for _, batch in zip(range(max_steps), itertools.cycle(batches)):\n"
            "        loss = model(**batch).loss\n"
            "        loss.backwards()\n"
            "        optimizer.step()\n"
            "        optimizer.zero_grad()\n"
            "        losses.append(loss.item())\n"
            "    return losses")}},
    "dave": {  # merges into the 4-bit model, and edits the merge test so it 'passes'
        "04-merge-and-deploy.ipynb": {
            "merge-model": None,
            "test-merge-model": "assert True  # fine on my machine"}},
}


def _lora_overrides(student: str, notebook: str, cells: dict) -> dict:
    """Fill the None placeholders above from the solution with a small, realistic edit."""
    solved = {c.id: c.source for c in filled_release("01-lora", notebook).cells}
    out = {}
    for gid, source in cells.items():
        if source is not None:
            out[gid] = source
        elif gid == "lora-layer":
            out[gid] = solved[gid].replace("self.scaling = alpha / r", "self.scaling = alpha")
        elif gid == "merge-model":
            out[gid] = solved[gid].replace('return load_model("llama", PROFILE)',
                                           'return load_model("llama", PROFILE, quantization="nf4")')
    return out


# nbgrader's timestamp.txt per student of the basics class: bob hands in a day and a half late.
TIMESTAMPS = {"alice": "2026-11-30 10:00:00.000000 UTC", "bob": "2026-12-03 02:00:00.000000 UTC",
              "carol": "2026-12-01 15:00:00.000000 UTC", "dave": "2026-12-01 12:30:00.000000 UTC"}


def write_class(assignment: str, students: dict, notebooks: list[str], resolve=None, timestamps=None) -> None:
    for student, per_notebook in students.items():
        for notebook in notebooks:
            cells = per_notebook.get(notebook, {})
            if resolve is not None:
                cells = resolve(student, notebook, cells)
            out = ROOT / "samples" / assignment / student / assignment / notebook
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(filled_release(assignment, notebook, cells), out)
        if timestamps and student in timestamps:
            (out.parent / "timestamp.txt").write_text(timestamps[student] + "\n")
        print(f"wrote samples/{assignment}/{student}/")


# The classes of later labs are built from the lab's own wrong answers (its mutants, which the
# kill matrix proves each check catches): alice is right, bob makes two of its mistakes, carol's
# notebook crashes half-way, dave "fixes" a visible test cell. student -> mutant names, or
# (notebook, cell, source) for a hand-written edit.
FROM_MUTANTS = {
    "06-bitfit": {
        "alice": [],
        "bob": ["count-head-forgotten", "serve-no-reset"],
        "carol": [("02-train.ipynb", "train-loop", "def train(model, batches, max_steps, lr):\n"
                   "    raise RuntimeError('CUDA error: out of memory (on my laptop)')")],
        "dave": ["head-frozen", ("02-train.ipynb", "test-train-bitfit", "assert True  # the loss goes down on my machine")],
    },
    "11-peft-comparison": {
        "alice": [],
        "bob": ["seconds-in-ms", "accuracy-train-mode"],
        "carol": [("01-compare.ipynb", "plot", "def plot_comparison(rows):\n    fig, ax = plt.subplots()\n"
                   "    ax.scatter(rows['trainable_pct'], rows['accuracy'])  # rows is a list, not a DataFrame\n    return fig")],
        "dave": ["optimizer-all-params", ("01-compare.ipynb", "test-measure", "assert True  # my numbers look fine")],
    },
}


def write_from_mutants(assignment_name: str, students: dict) -> None:
    """A class of ``assignment_name`` whose wrong answers are its mutants' edits (combined per student)."""
    from graders.assignment import load_assignment
    from graders.mutants.run import apply_edits
    from graders.mutants.spec import Edit, Mutant, load_mutants

    assignment = load_assignment(assignment_name)
    for student, parts in students.items():
        names = [p for p in parts if isinstance(p, str)]
        edits = [e for m in (load_mutants(assignment, names) if names else []) for e in m.edits]
        edits += [Edit(notebook=nb, cell=cell, source=source) for nb, cell, source in (p for p in parts if not isinstance(p, str))]
        combined = Mutant(name=student, title=student, fails=frozenset(), edits=tuple(edits))
        for notebook, nb in apply_edits(assignment, combined).items():
            out = ROOT / "samples" / assignment_name / student / assignment_name / notebook
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out)
        print(f"wrote samples/{assignment_name}/{student}/")


def main() -> None:
    write_class("00-pytorch-basics", BASICS, ["basics.ipynb"], timestamps=TIMESTAMPS)
    write_class("01-lora", LORA, ["01-setup.ipynb", "02-train.ipynb", "03-inference.ipynb", "04-merge-and-deploy.ipynb"],
                _lora_overrides)
    for name, students in FROM_MUTANTS.items():
        write_from_mutants(name, students)


if __name__ == "__main__":
    main()
