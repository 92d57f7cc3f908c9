"""Serve a Flask app over real HTTP on loopback: Werkzeug's server in a thread, or gunicorn.

Both are context managers yielding the base URL (``http://127.0.0.1:PORT``);
every wait is bounded and the server is always stopped.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 15.0


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)


def get(base_url: str, path: str, headers: Optional[Mapping[str, str]] = None) -> Reply:
    """One GET with a fresh connection and a bounded timeout (a hung response fails the test)."""
    host, port = base_url.split("://", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


@contextlib.contextmanager
def werkzeug_server(app: Any) -> Iterator[str]:
    """The app under ``werkzeug.serving.make_server`` (the ``flask run`` server), in a thread."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="werkzeug-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=STOP_TIMEOUT)


def _wait_ready(base_url: str, path: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if get(base_url, path).status == 200:
                return
        except (OSError, http.client.HTTPException) as e:
            last = e
        time.sleep(0.1)
    raise RuntimeError(
        f"gunicorn did not answer {path} within {START_TIMEOUT}s ({last!r}):\n{log.read_text(errors='replace')[-4000:]}"
    )


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the arbiter (it stops its workers), then SIGKILL its process group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    # The arbiter leads its own session (start_new_session): that group is only it and its workers.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def gunicorn_server(
    app_spec: str,
    *,
    chdir: Path,
    env: Mapping[str, str],
    ready_path: str,
    extra_args: Sequence[str] = (),
) -> Iterator[str]:
    """``gunicorn APP_SPEC`` (sync worker) on an already-listening loopback socket.

    The socket is bound here to 127.0.0.1:0 and handed over as ``fd://N``, so
    there is no race for a free port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    fd = sock.fileno()
    os.set_inheritable(fd, True)
    log_fd, log_name = tempfile.mkstemp(prefix="gunicorn-test-", suffix=".log")
    log = Path(log_name)
    args = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"fd://{fd}",
        "--workers", "1",
        "--worker-class", "sync",
        "--timeout", "60",
        "--graceful-timeout", "2",
        "--chdir", str(chdir),
        *extra_args,
        app_spec,
    ]  # fmt: skip
    full_env = dict(os.environ)
    full_env.update(env)
    try:
        with os.fdopen(log_fd, "wb") as log_file:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=full_env,
                pass_fds=(fd,),
                start_new_session=True,
            )
    finally:
        sock.close()  # gunicorn has its own copy
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, ready_path, proc, log)
        yield base_url
    finally:
        _stop(proc)
        with contextlib.suppress(OSError):
            log.unlink()
