"""Run untrusted notebook code in a fresh Jupyter kernel, as isolated as this machine allows.

What is isolated (with bubblewrap, the default where it runs):
- network: a new, empty network namespace (no interface but a down loopback);
- processes: a new pid namespace; the kernel sees only its own tree, and the whole tree is
  killed when the session closes (``--die-with-parent`` and a kill of its process group);
- files: the root filesystem is read-only; only the scratch folder is writable; the instructor
  tree (sources, solutions, graders, tests, results, every submission) is covered by empty
  tmpfs mounts; /tmp is a private tmpfs;
- identity: when the grader runs as root, the kernel runs as an unprivileged uid of its own, so
  RLIMIT_NPROC bounds fork bombs and file permissions apply;
- resources: rlimits on address space, file size, CPU seconds, processes and core dumps;
  wall-clock limits per cell and per notebook, enforced by interrupting, then killing.

What is NOT isolated:
- everything readable on the machine outside the hidden paths stays readable (the venv,
  common_utils, system files): do not keep secrets there;
- CPU and memory bandwidth are shared with other kernels (no cgroups); timing side channels exist;
- /dev is a minimal devtmpfs view, but GPUs are visible when present (GPU runners need them);
- without bubblewrap (macOS, containers that forbid user namespaces) only the rlimits and
  wall-clock limits apply: such results carry the ``isolation_degraded`` flag, and
  ``--require-isolation`` refuses to grade.
"""
from graders.sandbox.kernel import CellResult, KernelSession, NotebookRun
from graders.sandbox.policy import SandboxPolicy

__all__ = ["CellResult", "KernelSession", "NotebookRun", "SandboxPolicy"]
