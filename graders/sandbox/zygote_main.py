"""The zygote's own program: trusted code, run inside the worker's bubblewrap view as root with a
few capabilities, that imports the heavy modules once and forks one kernel per request.

It imports nothing of the course (the grader passes this file's text with ``python -P -c``, and
``graders/`` is not in the view) and reads one JSON request a line on stdin, answering one JSON
line on stdout, once it has imported its preload list.

Requests: ``{"op": "spawn", ...}`` forks a kernel that waits; ``{"op": "go", "pid": N}`` lets it
start (the grader has put it in its pids cgroup by then); ``{"op": "status", "pid": N}`` answers
its wait status once reaped. End of input: the zygote kills its children and exits.

Each kernel is three processes, so that it gets every namespace a cold kernel gets from bwrap:
  C (the zygote's child, root): new session; new mount, pid, network, ipc and uts namespaces;
    a fresh tmpfs on /tmp and /dev/shm; a tmpfs over the scratch parent with only its own
    scratch bound back; loopback up; rlimits; waits for "go"; forks I; exits with I's status.
  I (pid 1 of the new pid namespace): mounts its own /proc; drops every capability (bounding
    set, then the change of uid clears the rest) and sets no_new_privs; becomes the submission's
    uid; forks K, reaps orphans, exits with K's status (its death takes the namespace along).
  K (the kernel): its fds, folder and environment replaced by the policy's; ipykernel in-process.
"""
import json
import os
import signal
import sys

PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
SIOCSIFFLAGS, IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x8914, 0x1, 0x8, 0x40

_libc = None
_children: dict = {}  # ns pid of C -> write end of its "go" pipe (None once sent)
_statuses: dict = {}  # ns pid of C -> wait status, once reaped


def libc():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def check(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source, target, fstype, flags, data=None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    check(libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def die_with_parent() -> None:
    libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def run_or_exit(step, req: dict, code: int) -> None:
    """Run a forked step; never return to the caller's loop (say why on stderr if it fails)."""
    try:
        step(req)
    except BaseException as err:  # noqa: BLE001 - the grader reads stderr on a failed start
        import traceback

        print(f"zygote {step.__name__}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        traceback.print_exc()
        sys.stderr.flush()
    os._exit(code)


def exit_like(status: int) -> None:
    """Leave with the same outcome as a child whose wait status is ``status``."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if os.getpid() != 1:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    code = os.WEXITSTATUS(status)
    if os.getpid() != 1 and code > 128 and code - 128 < signal.NSIG:  # I reports a signal as 128 + n
        signal.signal(code - 128, signal.SIG_DFL)
        os.kill(os.getpid(), code - 128)
    os._exit(code)


def wait_for(pid: int) -> int:
    """Reap every child (pid 1 adopts orphans) until ``pid`` exits; its wait status."""
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if got == pid:
            return status


def close_fds(keep=()) -> None:
    for fd in [int(f) for f in os.listdir("/proc/self/fd")]:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


# --- C: namespaces, mounts, limits ----------------------------------------------------------
def private_view(scratch: str) -> None:
    """A mount namespace where /tmp and /dev/shm are empty and the scratch parent holds only
    this kernel's scratch folder (the others of this worker are simply not there)."""
    parent = os.path.dirname(scratch)
    keep = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    if not os.path.isdir(parent):  # it was under /tmp: make the way to it in the fresh one
        mask = os.umask(0o022)
        os.makedirs(parent)
        os.umask(mask)
    if parent != "/tmp":
        mount("tmpfs", parent, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    os.mkdir(scratch, 0o700)
    mount(f"/proc/self/fd/{keep}", scratch, None, MS_BIND)
    os.close(keep)
    if os.path.isdir("/dev/shm"):  # as a cold kernel's bwrap --dev makes it: empty, root's, 0755
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")


def loopback_up() -> None:
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING, b"\0" * 14))


def child(req: dict, go: int) -> None:
    """C: runs as root with the zygote's capabilities until I drops them."""
    import resource

    os.setsid()
    die_with_parent()
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    close_fds(keep=(go,))
    for sig in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    check(libc().unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    private_view(req["scratch"])
    loopback_up()
    for kind, value in req["limits"]:
        soft, hard = resource.getrlimit(kind)
        cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (cap, cap))
    if os.read(go, 1) != b"g":  # the grader has not put us in the kernel's cgroup: never start
        os._exit(1)
    os.close(go)
    pid = os.fork()
    if pid == 0:
        run_or_exit(init, req, 70)
    exit_like(wait_for(pid))


def drop_privileges(uid: int) -> None:
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        check(libc().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    import ctypes

    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    check(libc().capset(header, (ctypes.c_uint32 * 6)()), "clear the inheritable capabilities")
    with open("/proc/self/status") as fh:
        caps = {k: v.strip() for k, v in (line.split(":", 1) for line in fh) if k.startswith("Cap")}
    if any(int(caps[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb") if k in caps):
        raise PermissionError(f"capabilities left after the drop: {caps}")


def init(req: dict) -> None:
    """I: pid 1 of the kernel's namespace."""
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    drop_privileges(req["uid"])
    die_with_parent()
    pid = os.fork()
    if pid == 0:
        run_or_exit(kernel, req, 72)
    exit_like(wait_for(pid))


# Packages that turn $HOME into cache and config paths when imported (HF_HOME, HF_HUB_CACHE,
# transformers' HF_MODULES_CACHE, accelerate's config, fsspec's, the user site).
HOME_DERIVED = ("huggingface_hub", "transformers", "accelerate", "peft", "datasets", "fsspec", "site")


def rehome(old: str, new: str) -> None:
    """Point the paths that preloaded modules derived from the zygote's $HOME (``/tmp/.cache/
    huggingface/...``) at the kernel's own $HOME, its scratch folder, as a cold kernel has them."""
    if not old or not new or old == new:
        return
    import pathlib

    prefix = old.rstrip("/") + "/."  # dot folders under the old home only: never /tmp itself
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in HOME_DERIVED:
            continue
        for key, value in list(vars(module).items()):
            text = str(value) if isinstance(value, (str, pathlib.PurePath)) else None
            if text is not None and text.startswith(prefix):
                moved = new.rstrip("/") + text[len(old.rstrip("/")):]
                setattr(module, key, moved if isinstance(value, str) else type(value)(moved))


def kernel(req: dict) -> None:
    """K: the kernel, with nothing of the zygote's state that the policy does not give it."""
    die_with_parent()
    os.chdir(req["scratch"])
    log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    close_fds()
    zygote_home = os.environ.get("HOME", "")
    os.environ.clear()
    os.environ.update(req["env"])
    rehome(zygote_home, os.environ.get("HOME", ""))
    sys.path.insert(0, req["scratch"])
    import random

    random.seed()  # unseeded randomness differs per kernel, as in a fresh interpreter
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules and req.get("threads"):
        sys.modules["torch"].set_num_threads(req["threads"])
    from ipykernel.kernelapp import IPKernelApp

    sys.argv = ["ipykernel_launcher", *req["argv"]]
    IPKernelApp.launch_instance(req["argv"])
    os._exit(0)


# --- the zygote: preload, then serve ---------------------------------------------------------
def reap(*_) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _statuses[pid] = status
        fd = _children.pop(pid, None)
        if fd is not None:
            os.close(fd)


def handle(req: dict) -> dict:
    op = req.get("op")
    if op == "spawn":
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(w)
                child(req, r)
            except BaseException as err:  # noqa: BLE001 - say why on the zygote's stderr
                print(f"zygote child: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            os._exit(71)
        os.close(r)
        _children[pid] = w
        return {"pid": pid}
    if op == "go":
        fd = _children.get(req["pid"])
        if fd is None:
            return {"error": f"no waiting child {req['pid']}"}
        os.write(fd, b"g")
        os.close(fd)
        _children[req["pid"]] = None
        return {"ok": True}
    if op == "status":
        status = _statuses.pop(req["pid"], None)
        return {"status": status}
    return {"error": f"unknown op {op!r}"}


def preload(names: list) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - a module that will not import is imported by the kernel
            print(f"zygote: preloading {name} failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)


def serve() -> None:
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        try:
            answer = handle(json.loads(line))
        except Exception as err:  # noqa: BLE001 - the grader falls back to a cold kernel
            answer = {"error": f"{type(err).__name__}: {err}"}
        os.write(1, json.dumps(answer).encode() + b"\n")


def main() -> None:
    die_with_parent()
    signal.signal(signal.SIGCHLD, reap)
    # All before the first answer: a kernel forked half-way would import the rest itself, on the
    # same cores as the zygote (measured: the first kernel then took longer than a cold one).
    preload(["ipykernel.kernelapp", *json.loads(sys.argv[1])])
    # The preloaded objects move to a permanent generation the collector never walks: a kernel's
    # collections then do not touch (and copy) the zygote's pages, which keeps forks cheap.
    import gc

    gc.collect()
    gc.freeze()
    os.write(1, json.dumps({"ready": os.getpid()}).encode() + b"\n")
    try:
        serve()
    finally:
        for pid in list(_children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    main()
