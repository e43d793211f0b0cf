"""Mutants as data: an assignment's plausible wrong answers, kept beside its sources.

Each mutant is one TOML file ``assignments/<a>/mutants/<name>.toml``: small edits to solution
cells of the filled release, the checks it must fail, and the flags it must raise. A mutant that
must fail nothing is a *correct-but-different* answer (einsum instead of @, another loop): it must
keep full marks. ``course mutants A`` grades the solution, the untouched release and every mutant
in one batch and prints the kill matrix (mutant × check). The matrix is green when

- the solution scores full marks (pending GPU checks aside) and the untouched release 0;
- every mutant fails exactly the checks it names (no survivor, no collateral failure) and
  raises the flags it names;
- every check is killed by at least one mutant (only judged on a full run, not a subset).

See ``spec.py`` for the file format and ``run.py`` for the batch.
"""
from graders.mutants.spec import Edit, Mutant, load_mutants
from graders.mutants.run import MutantReport, run_mutants

__all__ = ["Edit", "Mutant", "MutantReport", "load_mutants", "run_mutants"]
