"""`ServerProcess`: `distillrec serve` in a child process on the loopback address, for tests, benchmarks and scripts.

    with ServerProcess(model_dir, db=path, api_key="k") as server:
        httpx.post(server.url + "/recommend", json={"user_id": "196"})

It starts the command line's own server (so what is tested is what users run), waits until `/health/ready`
answers, and stops it on exit (SIGTERM, then SIGKILL); `kill()` stops it at once with SIGKILL, as a crash would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["ServerProcess", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(
        self,
        model_dir: str | Path,
        db: str | Path,
        api_key: str,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        ready_timeout: float = 180.0,
        log: str | Path | None = None,
    ) -> None:
        self.model_dir, self.db, self.api_key = Path(model_dir), str(db), api_key  # db: a file or a URL
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args, self.ready_timeout = extra_args, ready_timeout
        if log is None and "://" in self.db:
            raise ValueError("give `log` (where the server's output goes) with a database URL")
        self.log = Path(log) if log else Path(f"{self.db}.server-{self.port}.log")
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "distillrec", "serve", str(self.model_dir), "--port", str(self.port)]
        command += ["--db", self.db, *self.extra_args]
        env = {**os.environ, "DISTILLREC_API_KEY": self.api_key, "OPENBLAS_NUM_THREADS": "1"}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.process.returncode}; its log:\n{self.log.read_text()}"
                )
            try:
                if httpx.get(self.url + "/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the server was not ready after {self.ready_timeout:.0f} s; its log: {self.log}")

    def kill(self) -> None:
        """SIGKILL: the server ends at once, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
