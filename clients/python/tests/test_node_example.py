"""Run examples/node/validate.js against the real service and check its JSON."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.integration

NODE_DIR = REPO_ROOT / "examples" / "node"


def run_node(*args: str) -> tuple[int, dict]:
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir(), "run `npm ci` in examples/node first"
    proc = subprocess.run(
        [node, "validate.js", *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=60
    )
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"validate.js printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, out


def test_node_valid_access_token(dev):
    code, out = run_node("--addr", dev.grpc_addr, "--token-use", "access", "--scope", "openid", dev.access_token)
    assert code == 0, out
    assert out["valid"] is True
    assert out["reason"] == "REASON_UNSPECIFIED"
    assert out["claims"]["username"] == "dev-user"
    assert out["claims"]["token_use"] == "access"
    assert "openid" in out["claims"]["scopes"]
    assert out["claims"]["payload"]["iss"] == dev.issuer
    assert isinstance(out["claims"]["expires_at"], int)


def test_node_grpc_url_and_rejections(dev, expired, bob):
    code, out = run_node("--addr", dev.grpc_url, expired["id_token"])
    assert code == 1
    assert out == {"valid": False, "reason": "REASON_EXPIRED", "message": out["message"]}
    code, out = run_node("--addr", dev.grpc_addr, "--group", "admin", bob["access_token"])
    assert code == 1
    assert out["reason"] == "REASON_MISSING_GROUP"


def test_node_service_down(doomed_dev):
    addr = doomed_dev.grpc_addr
    doomed_dev.stop()
    code, out = run_node("--addr", addr, "--timeout", "5", doomed_dev.access_token)
    assert code == 3
    assert out["error"] == "UNAVAILABLE"
