"""Start, wait for and stop model server processes, for tests and other harness code.

A server is a child process on a loopback port; `running()` is the context manager that
never leaves one behind. Waiting polls /healthz until a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

#: The repository root: `python -m e2e.modelserver` must run from here.
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port free right now (the OS may hand it out again later: use it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ServerProcess:
    """A started server: its process and its base URL."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus `env`, with the repository on PYTHONPATH."""
    full = {**os.environ, **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full.get("PYTHONPATH", "")) if p)
    return full


def start(port: int, env: Mapping[str, str] | None = None, log_path: Path | None = None) -> ServerProcess:
    """Starts `python -m e2e.modelserver --port port` with `env` added to this environment.

    Its output goes to `log_path` (appended) or nowhere.
    """
    command = [sys.executable, "-m", "e2e.modelserver", "--port", str(port)]
    if log_path is None:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=child_env(env),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    else:
        with open(log_path, "ab") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                command, cwd=ROOT, env=child_env(env), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            )
    return ServerProcess(process=proc, port=port)


def wait_healthy(server: ServerProcess, timeout_s: float = 20.0) -> float:
    """Polls /healthz until 200; returns the seconds waited. Raises if it exits or times out."""
    started = time.monotonic()
    deadline = started + timeout_s
    with httpx.Client(timeout=1.0) as client:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"model server on {server.port} exited with {server.process.returncode}")
            try:
                if client.get(f"{server.url}/healthz").status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"model server on {server.port} not healthy after {timeout_s} s")
            time.sleep(0.02)  # poll interval, bounded by the deadline above


def stop(server: ServerProcess, timeout_s: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after `timeout_s`; returns the exit status."""
    proc = server.process
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextmanager
def running(env: Mapping[str, str] | None = None, timeout_s: float = 20.0) -> Iterator[ServerProcess]:
    """A healthy server on a free port for the duration of the block; always stopped after."""
    server = start(free_port(), env)
    try:
        wait_healthy(server, timeout_s)
        yield server
    finally:
        stop(server)
