"""rlimits and the kernel's identity, applied in the child between fork and exec.

As root, rlimits alone do not hold: RLIMIT_NPROC never binds root (nor a user namespace mapped
onto root), and root reads every file whatever its mode (/etc/shadow, /root). So a grader that
runs as root starts each kernel under an unprivileged uid of its own, a different one per
session so that two kernels never share a process budget. That uid has no passwd entry; the
kernel gets ``USER=student`` so that ``getpass.getuser()`` still answers.
A grader that is not root (a student's laptop running ``course check``) keeps its own uid.
"""
from __future__ import annotations

import ctypes
import os
import resource
import signal
import secrets
import stat
from pathlib import Path

from graders.sandbox.policy import SandboxPolicy

PR_SET_PDEATHSIG = 1
UID_BASE, UID_SPAN = 200_000, 100_000  # above every uid a distribution hands out, below 2**31


def sandbox_uid() -> int | None:
    """A fresh unprivileged uid for one kernel when we are root, else None (keep ours)."""
    if os.geteuid() != 0:
        return None
    return UID_BASE + secrets.randbelow(UID_SPAN)


def reachable_by_others(path: Path) -> str:
    """'' when a uid with no rights but 'other' can reach ``path``; else the first folder that stops it."""
    path = Path(path).resolve()
    for folder in [*reversed(path.parents), path] if path.is_dir() else reversed(path.parents):
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            return str(folder)
    return ""


def hand_over(scratch: Path, uid: int | None) -> None:
    """Give the scratch folder (and what the grader copied into it) to the kernel's uid."""
    if uid is None:
        return
    for root, dirs, files in os.walk(scratch):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), uid, uid)
    os.chown(scratch, uid, uid)


def rlimits(policy: SandboxPolicy, uid: int | None) -> list[tuple[int, int]]:
    """(resource, value) pairs a kernel runs under, cold (``preexec``) or warm (the zygote's fork)."""
    mib = 2**20
    # A GPU kernel has no address-space limit: CUDA reserves far more than any host has, and would
    # not start (graders/sandbox/gpu.py); its memory is bounded by the cgroup or the sampler.
    limits = [] if policy.gpu else [(resource.RLIMIT_AS, policy.memory_mb * mib)]
    limits += [
        (resource.RLIMIT_FSIZE, policy.max_file_mb * mib),
        (resource.RLIMIT_CPU, policy.cpu_seconds),
        (resource.RLIMIT_CORE, 0),
    ]
    if uid is not None:
        # The uid is this kernel's alone. A little above pids.max, so that the cgroup (which
        # records that it refused a fork: the process_limit flag) binds first where it exists.
        # RLIMIT_NPROC counts threads, and every kernel of a submission (one per notebook, kept
        # alive for the checks) shares the uid: on a many-core runner each holds pools of
        # `threads` threads (OpenMP, torch's inter-op pool, the tokenizers'), so room is made for
        # them there. A fork bomb still stops at pids.max first, per kernel.
        pools = 8 * 3 * policy.threads if policy.threads > 4 else 0
        limits.append((resource.RLIMIT_NPROC, policy.max_processes + 16 + pools))
    elif os.geteuid() != 0:
        # RLIMIT_NPROC counts every process of the user: leave room for what the user already runs.
        import psutil

        mine = sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == os.getuid())
        limits.append((resource.RLIMIT_NPROC, mine + policy.max_processes))
    return limits


def preexec(policy: SandboxPolicy, cgroup_procs: str | None, uid: int | None, setuid: bool):
    """The function Popen runs in the child: a new session, the pids cgroup, the rlimits, then,
    with ``setuid``, the drop to ``uid`` (last: joining the cgroup needs root). Under bwrap the
    drop happens inside the sandbox instead, after bwrap has built its mounts as root."""
    limits = rlimits(policy, uid)
    parent = os.getpid()

    def apply() -> None:
        os.setsid()
        if cgroup_procs:
            with open(cgroup_procs, "w") as fh:
                fh.write(str(os.getpid()))
        for kind, value in limits:
            soft, hard = resource.getrlimit(kind)
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (cap, cap))
        if setuid and uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        # Die with the grader (a killed pool worker must not leave kernels behind). Set last: a
        # change of uid clears it. bwrap's --die-with-parent does the same for the sandboxed case.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the grader died before the line above took effect
            os._exit(1)

    return apply
