"""Start and stop a real `token-validator serve --config FILE` process on loopback, and read its /metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import devserver

START_TIMEOUT = devserver.START_TIMEOUT
STOP_TIMEOUT = devserver.STOP_TIMEOUT
HTTP_TIMEOUT = 10.0

_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class ServeError(RuntimeError):
    pass


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of a Prometheus text exposition: (name, labels, value)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            labels = dict(_LABEL.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return samples


@dataclass
class ServeProcess:
    proc: subprocess.Popen
    config_path: Path
    stderr_path: Path
    grpc_addr: str = ""
    metrics_addr: str = ""

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://{self.metrics_addr}/metrics", timeout=HTTP_TIMEOUT) as resp:
            return resp.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        return sum(
            value
            for sample, have, value in parse_metrics(self.metrics_text())
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.metrics_addr}/readyz", timeout=HTTP_TIMEOUT) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stderr_tail(self, n: int = 4000) -> str:
        return devserver.file_tail(self.stderr_path, n)

    def stop(self) -> Optional[int]:
        """SIGTERM, wait (bounded), SIGKILL if needed; returns the exit code."""
        code = devserver.stop_process(self.proc, STOP_TIMEOUT)
        self.config_path.unlink(missing_ok=True)
        return code

    def remove_log(self) -> None:
        self.stderr_path.unlink(missing_ok=True)


def start(config: Mapping[str, Any], *, env: Optional[Mapping[str, str]] = None) -> ServeProcess:
    """Run `token-validator serve` with ``config`` (listen and metrics on 127.0.0.1:0) until
    it logs its addresses and /readyz answers 200 (every required pool has its keys)."""
    config = {"listen": "127.0.0.1:0", "metrics": {"listen": "127.0.0.1:0"}, **config}
    fd, name = tempfile.mkstemp(prefix="token-validator-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)  # JSON is YAML
    config_path = Path(name)
    fd, name = tempfile.mkstemp(prefix="token-validator-serve-", suffix=".log")
    stderr_path = Path(name)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run_env.setdefault("RUST_LOG", "info")
    run_env["TOKEN_VALIDATOR_LOG_FORMAT"] = "json"
    run_env.update(env or {})
    args = [str(devserver.binary()), "serve", "--config", str(config_path)]
    with os.fdopen(fd, "wb") as stderr_file:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr_file, env=run_env
        )
    server = ServeProcess(proc=proc, config_path=config_path, stderr_path=stderr_path)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while not server.metrics_addr:
            if proc.poll() is not None:
                raise ServeError(f"token-validator serve exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise ServeError(f"no 'token-validator serving' line within {START_TIMEOUT}s")
            for line in server.stderr_tail(1 << 20).splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                fields = event.get("fields", {})
                if fields.get("message") == "token-validator serving":
                    server.grpc_addr, server.metrics_addr = fields["listen"], fields["metrics"]
                    break
            else:
                time.sleep(0.05)
        for addr in (server.grpc_addr, server.metrics_addr):
            if not addr.startswith("127.0.0.1:"):
                raise ServeError(f"{addr!r} is not on loopback")
        while not server.ready():
            if proc.poll() is not None:
                raise ServeError(f"token-validator serve exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise ServeError(f"/readyz not 200 within {START_TIMEOUT}s")
            time.sleep(0.1)
        return server
    except BaseException as e:
        server.stop()
        if isinstance(e, ServeError):
            raise ServeError(f"{e}\n--- stderr ---\n{server.stderr_tail()}") from None
        raise
