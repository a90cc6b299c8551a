"""Background processes of the e2e world: start with a log file and a pid file, wait, stop.

Every component is a plain child process detached into its own session, so that `cluster-up`
can return while the world keeps running, and `cluster-down` (or a later `cluster-up` that
finds a half-started world) can find and stop it from the pid files alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class StartError(RuntimeError):
    """A component did not come up; the message carries the tail of its log."""


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    argv: Sequence[str]
    ports: Sequence[int] = ()
    env: Mapping[str, str] | None = None
    cwd: Path | None = None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); look at its state.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


class Supervisor:
    """Starts and stops the components of one world, keeping pids under `run_dir`."""

    def __init__(self, run_dir: Path, log_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid_of(self, name: str) -> int | None:
        try:
            pid = int(self.pid_file(name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def running(self) -> list[str]:
        return sorted(p.stem for p in self.run_dir.glob("*.pid") if self.pid_of(p.stem) is not None)

    def start(self, component: Component) -> int:
        for port in component.ports:
            if port_in_use(port):
                raise StartError(
                    f"{component.name}: port 127.0.0.1:{port} is already in use; stop what holds it "
                    f"(`ss -ltnp 'sport = :{port}'`) or set another port"
                )
        log = self.log_file(component.name).open("ab")
        env = dict(os.environ)
        env.update(component.env or {})
        proc = subprocess.Popen(
            list(component.argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=component.cwd,
            start_new_session=True,
        )
        log.close()
        self.pid_file(component.name).write_text(str(proc.pid))
        return proc.pid

    def wait_until(
        self, name: str, ready: Callable[[], bool], timeout: float, what: str = "ready"
    ) -> None:
        """Polls `ready` until it holds; fails fast if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid_of(name) is None:
                raise StartError(f"{name} exited during start-up. Last log lines:\n{tail(self.log_file(name))}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.25)
        raise StartError(
            f"{name} was not {what} after {timeout:.0f} s. Last log lines:\n{tail(self.log_file(name))}"
        )

    def stop(self, name: str, grace: float = 10.0) -> None:
        pid = self.pid_of(name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and pid_alive(pid):
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while pid_alive(pid):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.05)
        self.pid_file(name).unlink(missing_ok=True)
