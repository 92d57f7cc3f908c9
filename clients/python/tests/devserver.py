"""Start and stop a real `token-validator dev` process on loopback for the tests."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "token-validator"
START_TIMEOUT = float(os.environ.get("TOKEN_VALIDATOR_START_TIMEOUT", "60"))
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0


def file_tail(path: Path, n: int = 4000) -> str:
    """The last `n` characters of a log file ("" if it cannot be read)."""
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def stop_process(proc: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> Optional[int]:
    """SIGTERM, wait (bounded), SIGKILL if needed; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


class DevServerError(RuntimeError):
    pass


def binary() -> Path:
    path = Path(os.environ.get("TOKEN_VALIDATOR_BIN") or DEFAULT_BIN)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise DevServerError(
            f"token-validator binary not found at {path}: build it (cargo build) "
            "or set TOKEN_VALIDATOR_BIN"
        )
    return path


@dataclass
class DevServer:
    proc: subprocess.Popen
    info: dict[str, Any]
    stderr_path: Path
    _drain: Optional[threading.Thread] = field(default=None, repr=False)

    @property
    def grpc_addr(self) -> str:
        return str(self.info["grpc_addr"])

    @property
    def grpc_url(self) -> str:
        return str(self.info["grpc_url"])

    @property
    def issuer(self) -> str:
        return str(self.info["issuer"])

    @property
    def client_id(self) -> str:
        return str(self.info["client_id"])

    @property
    def mint_url(self) -> str:
        return str(self.info["mint_url"])

    @property
    def id_token(self) -> str:
        return str(self.info["id_token"])

    @property
    def access_token(self) -> str:
        return str(self.info["access_token"])

    def mint(self, **fields: Any) -> dict[str, str]:
        """POST to the dev issuer's mint_url; returns {"id_token": ..., "access_token": ...}."""
        body = json.dumps(fields).encode()
        req = urllib.request.Request(
            self.mint_url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            out = json.loads(resp.read())
        assert "id_token" in out and "access_token" in out, f"mint answered {out!r}"
        return out

    @property
    def revoke_url(self) -> str:
        """``POST /dev/revoke`` on the dev issuer (the mint_url's origin)."""
        return self.mint_url.rsplit("/dev/", 1)[0] + "/dev/revoke"

    def revoke(self, access_token: str) -> None:
        """Revoke an access token: Cognito's GetUser (so GetUserInfo) then refuses it."""
        body = json.dumps({"access_token": access_token}).encode()
        req = urllib.request.Request(
            self.revoke_url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            assert resp.status == 204, f"/dev/revoke answered {resp.status}"

    def change_user(self, username: str, change: str) -> int:
        """``POST /dev/users/{username}/{change}`` (``disable``, ``enable`` or ``delete``), as
        Cognito's AdminDisableUser, AdminEnableUser and AdminDeleteUser; returns the status
        (204, or 404 for no such user)."""
        url = self.mint_url.rsplit("/dev/", 1)[0] + f"/dev/users/{username}/{change}"
        req = urllib.request.Request(url, data=b"", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    def stderr_tail(self, n: int = 4000) -> str:
        return file_tail(self.stderr_path, n)

    def stop(self) -> Optional[int]:
        """SIGTERM, wait (bounded), SIGKILL if needed; returns the exit code."""
        code = stop_process(self.proc)
        if self._drain is not None:
            self._drain.join(timeout=5)
        return code


def _check_loopback(url_or_addr: str, what: str) -> None:
    host = url_or_addr.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        raise DevServerError(f"{what} {url_or_addr!r} is not on loopback")


def start(extra_args: tuple[str, ...] = ()) -> DevServer:
    """Start `token-validator dev --json` on 127.0.0.1 and wait for its JSON line."""
    args = [
        str(binary()),
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--issuer-listen",
        "127.0.0.1:0",
        "--json",
        *extra_args,
    ]
    fd, name = tempfile.mkstemp(prefix="token-validator-dev-", suffix=".log")
    stderr_path = Path(name)
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "info")
    with os.fdopen(fd, "wb") as stderr_file:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_file, env=env
        )
    lines: "queue.Queue[bytes]" = queue.Queue()

    def drain() -> None:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            lines.put(line)
        lines.put(b"")

    t = threading.Thread(target=drain, name="token-validator-stdout", daemon=True)
    t.start()
    server = DevServer(proc=proc, info={}, stderr_path=stderr_path, _drain=t)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DevServerError(f"no JSON line from {' '.join(args)} within {START_TIMEOUT}s")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line == b"":
                proc.wait(timeout=STOP_TIMEOUT)
                raise DevServerError(f"token-validator dev exited with {proc.returncode} before printing its JSON line")
            text = line.decode(errors="replace").strip()
            if not text:
                continue
            try:
                info = json.loads(text)
            except ValueError as e:
                raise DevServerError(f"first stdout line of `token-validator dev --json` is not JSON: {text!r}") from e
            break
        missing = {"grpc_addr", "grpc_url", "issuer", "client_id", "mint_url", "id_token", "access_token"} - set(info)
        if missing:
            raise DevServerError(f"`dev --json` line lacks {sorted(missing)}: {info!r}")
        for key in ("grpc_addr", "grpc_url", "issuer", "mint_url"):
            _check_loopback(str(info[key]), key)
        server.info = info
        return server
    except BaseException as e:
        server.stop()
        if isinstance(e, DevServerError):
            raise DevServerError(f"{e}\n--- stderr ---\n{server.stderr_tail()}") from None
        raise


# --- JWT helpers (no verification: just to forge bad tokens) ---------------------------


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), b64url_decode(s)


def with_payload(token: str, **changes: Any) -> str:
    """Same header and signature, payload changed: the signature no longer matches."""
    h, _, s = token.split(".")
    _, payload, _ = jwt_parts(token)
    payload.update(changes)
    return f"{h}.{b64url_encode(json.dumps(payload, separators=(',', ':')).encode())}.{s}"


def with_header(token: str, **changes: Any) -> str:
    _, p, s = token.split(".")
    header, _, _ = jwt_parts(token)
    header.update(changes)
    return f"{b64url_encode(json.dumps(header, separators=(',', ':')).encode())}.{p}.{s}"


def with_flipped_signature(token: str) -> str:
    h, p, s = token.split(".")
    sig = bytearray(b64url_decode(s))
    sig[len(sig) // 2] ^= 0x01
    return f"{h}.{p}.{b64url_encode(bytes(sig))}"
