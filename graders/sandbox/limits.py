"""rlimits, applied in the child between fork and exec, and its pids cgroup."""
from __future__ import annotations

import os
import resource

from graders.sandbox.policy import SandboxPolicy


def preexec(policy: SandboxPolicy, cgroup_procs: str | None):
    """The function Popen runs in the child: a new session, the rlimits, the pids cgroup."""
    mib = 2**20
    limits = [
        (resource.RLIMIT_AS, policy.memory_mb * mib),
        (resource.RLIMIT_FSIZE, policy.max_file_mb * mib),
        (resource.RLIMIT_CPU, policy.cpu_seconds),
        (resource.RLIMIT_CORE, 0),
    ]
    if os.geteuid() != 0:
        # RLIMIT_NPROC counts every process of the user (and never binds root): leave room for
        # what the user already runs.
        import psutil

        mine = sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == os.getuid())
        limits.append((resource.RLIMIT_NPROC, mine + policy.max_processes))

    def apply() -> None:
        os.setsid()
        if cgroup_procs:
            with open(cgroup_procs, "w") as fh:
                fh.write(str(os.getpid()))
        for kind, value in limits:
            soft, hard = resource.getrlimit(kind)
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (cap, cap))

    return apply
