"""The `loyalty-api` command run as a user runs it: real processes on real ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "loyalty_api.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(extra)
    return env


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 180) -> None:
    """Until `url` answers 200. Generous: a busy machine takes long to start a process (and `serve --workers`
    starts several)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@contextmanager
def served(folder: Path, env: dict[str, str], *args: str) -> Iterator[tuple[str, Path]]:
    """`loyalty-api serve ARGS` started in `folder` with the environment `env`; yields its base URL and the
    file its output goes to. Stopped as an operator stops it (SIGINT)."""
    port = free_port()
    log = folder / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), *args],
            cwd=folder,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            try:
                wait_for(f"{base}/healthz", process)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; it said:\n{log.read_text(encoding='utf-8')[-3000:]}") from None
            yield base, log
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
