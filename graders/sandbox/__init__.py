"""Run untrusted notebook code in a fresh Jupyter kernel, as isolated as this machine allows.

What is isolated (with bubblewrap, the default where it runs):
- files, as an allow-list: the kernel's root is an empty read-only tmpfs holding, read-only, the
  system folders (/usr, /etc, /sys and the /bin, /lib links), this interpreter's prefixes (the venv
  and its base installation) and what the notebooks import from the course (``common_utils`` and
  its data); a private /tmp; and the scratch folder, its only writable place. Nothing else on the
  host exists for it: not the instructor tree, other checkouts, other users' homes or old results;
- network: a new network namespace with only its own loopback (the host's is not reachable);
- processes: a new pid namespace; the whole tree is killed when the session closes, and with
  the grader (``--die-with-parent``; a pool worker killed mid-grade takes its kernels along);
- identity: when the grader runs as root, the kernel runs as an unprivileged uid of its own, so
  RLIMIT_NPROC bounds fork bombs and file permissions apply (/etc/shadow stays closed);
- resources: rlimits on address space, file size, CPU seconds, processes and core dumps; a pids
  cgroup where one can be made; CPU-time limits per cell and notebook, with a wall-clock guard
  against hangs; output kept up to a cap, and ZeroMQ messages over 16 MiB dropped unread, so a
  flood of output cannot exhaust the grader's memory.

Warm kernels (``zygote.py``, on by default where bwrap runs as root): each grading worker keeps
one trusted template process, started in the same view, that has imported torch, transformers
and peft; a kernel is forked from it and, before any student code, gets its own mount, pid,
network, ipc and uts namespaces, a fresh /tmp and /dev/shm, a view of its scratch folder alone,
the rlimits, its pids cgroup and its submission's uid with no capability: the list above holds
for it unchanged. What kernels of one worker share is the trusted modules' memory image (so
their address layout: ASLR is per worker). ``--cold-kernels`` or ``[limits] warm_kernels =
false`` starts every kernel afresh; a zygote that cannot start or dies does the same, said once.

What is NOT isolated:
- the allowed folders are readable (system files, the venv, common_utils): keep no secret there;
- CPU, memory bandwidth and disk space are shared with other kernels (no cpu or memory cgroup);
  timing side channels exist; a kernel may fill its scratch folder up to the file-size limit;
- GPUs, where present, are visible (GPU runners need them);
- without bubblewrap (macOS, containers that forbid namespaces) only the rlimits, the time limits
  and, as root, the unprivileged uid apply: the kernel can read every world-readable file on the
  host (the solutions too) and reach the network. Such results carry ``isolation_degraded``, the
  batch says so once, and ``--require-isolation`` refuses to grade. The kernel never runs as root:
  where its uid cannot reach the interpreter it runs from a mirror (``interpreter.py``), and where
  it cannot reach the venv or the course, grading stops with a message that says how to fix it.
"""
from graders.sandbox.kernel import CellResult, KernelSession, NotebookRun
from graders.sandbox.policy import SandboxPolicy

__all__ = ["CellResult", "KernelSession", "NotebookRun", "SandboxPolicy"]
