"""moto's server (``python -m moto.server``) on loopback as a stand-in for Amazon Cognito.

moto is an AWS emulator nobody here wrote: it signs real RS256 tokens, serves
each pool's JWKS at ``/{pool_id}/.well-known/jwks.json`` and implements
GetUser, AdminGetUser, AdminUserGlobalSignOut, AdminDisableUser,
AdminEnableUser and AdminDeleteUser. It accepts any credentials; its tokens
carry the real AWS issuer (``https://cognito-idp.{region}.amazonaws.com/{pool_id}``),
so a pool pointed at it sets ``issuer`` and ``jwks_url``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import boto3
from botocore.config import Config

import devserver

REGION = "us-east-1"
START_TIMEOUT = float(os.environ.get("MOTO_START_TIMEOUT", "60"))
STOP_TIMEOUT = 15.0
PASSWORD = "Correct-horse-9-battery!"
_RUNNING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


class MotoError(RuntimeError):
    pass


@dataclass
class MotoServer:
    proc: subprocess.Popen
    log_path: Path
    port: int = 0
    _cognito: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cognito(self) -> Any:
        """A boto3 cognito-idp client on this server (dummy credentials: moto takes any)."""
        if self._cognito is None:
            self._cognito = boto3.client(
                "cognito-idp",
                region_name=REGION,
                endpoint_url=self.url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}),
            )
        return self._cognito

    def log_tail(self, n: int = 4000) -> str:
        return devserver.file_tail(self.log_path, n)

    def stop(self) -> Optional[int]:
        return devserver.stop_process(self.proc, STOP_TIMEOUT)

    def remove_log(self) -> None:
        self.log_path.unlink(missing_ok=True)


def start() -> MotoServer:
    """Start moto's server on 127.0.0.1 (a free port) and wait until it says where it listens."""
    fd, name = tempfile.mkstemp(prefix="moto-server-", suffix=".log")
    log_path = Path(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = MotoServer(proc=proc, log_path=log_path)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            m = _RUNNING.search(server.log_tail(1 << 16))
            if m:
                server.port = int(m.group(1))
                return server
            if proc.poll() is not None:
                raise MotoError(f"moto server exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise MotoError(f"moto server did not start within {START_TIMEOUT}s")
            time.sleep(0.05)
    except BaseException as e:
        server.stop()
        if isinstance(e, MotoError):
            raise MotoError(f"{e}\n--- log ---\n{server.log_tail()}") from None
        raise


@dataclass
class Pool:
    """A moto user pool with one app client that allows ADMIN_USER_PASSWORD_AUTH."""

    moto: MotoServer
    id: str
    client_id: str

    @classmethod
    def create(cls, moto: MotoServer, name: str) -> "Pool":
        idp = moto.cognito()
        pool_id = idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=f"{name}-app",
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        return cls(moto=moto, id=pool_id, client_id=client_id)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.moto.url}/{self.id}/.well-known/jwks.json"

    def config(self, name: str, **revocation: Any) -> dict[str, Any]:
        """The `pools[]` entry of token-validator for this pool."""
        return {
            "name": name,
            "region": REGION,
            "user_pool_id": self.id,
            "client_ids": [self.client_id],
            "issuer": self.issuer,
            "jwks_url": self.jwks_url,
            "revocation": {"endpoint": f"{self.moto.url}/", **revocation},
        }

    def new_user(self, prefix: str = "user") -> str:
        """A confirmed user with a permanent password."""
        idp = self.moto.cognito()
        username = f"{prefix}-{uuid.uuid4().hex[:8]}"
        idp.admin_create_user(
            UserPoolId=self.id,
            Username=username,
            TemporaryPassword="Temporary-9-pass!",
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}],
        )
        idp.admin_set_user_password(UserPoolId=self.id, Username=username, Password=PASSWORD, Permanent=True)
        return username

    def sign_in(self, username: str) -> dict[str, str]:
        """AdminInitiateAuth: {"access_token": ..., "id_token": ..., "refresh_token": ...}."""
        answer = self.moto.cognito().admin_initiate_auth(
            UserPoolId=self.id,
            ClientId=self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
        return {
            "access_token": answer["AccessToken"],
            "id_token": answer["IdToken"],
            "refresh_token": answer["RefreshToken"],
        }

    def global_sign_out(self, username: str) -> None:
        self.moto.cognito().admin_user_global_sign_out(UserPoolId=self.id, Username=username)

    def disable(self, username: str) -> None:
        self.moto.cognito().admin_disable_user(UserPoolId=self.id, Username=username)

    def enable(self, username: str) -> None:
        self.moto.cognito().admin_enable_user(UserPoolId=self.id, Username=username)

    def delete(self, username: str) -> None:
        self.moto.cognito().admin_delete_user(UserPoolId=self.id, Username=username)
