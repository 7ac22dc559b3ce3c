"""Real hub and node processes on loopback for the end-to-end tests, the chaos test, the demo and the
link benchmark: start a console script, wait for its port, talk to its JSON API, ``kill -9`` it and
start it again on the same data.

Everything runs with the SQLite default in a directory the caller owns; nothing listens beyond
127.0.0.1. Each process writes its output to ``<name>.log`` in that directory (shown when a start fails).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout} s")


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 60.0) -> str:
    """Run a console script to completion; its stdout, or an error with both streams."""
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, env=full_env, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    return done.stdout


class Proc:
    """One long-running server process; ``start``/``kill9``/``terminate`` keep the same command and port."""

    def __init__(self, name: str, args: list[str], port: int, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.args, self.port, self.env = name, args, port, env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 30.0) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it; closed when it ends
        self.popen = subprocess.Popen(
            [str(BIN / self.args[0]), *self.args[1:]],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,  # our own process group: a Ctrl-C at the terminal goes to the demo only
        )
        log.close()
        self.starts += 1
        try:
            wait_port(self.port, self.popen, timeout)
        except (RuntimeError, TimeoutError) as exc:
            self.kill9()
            raise RuntimeError(f"{self.name} did not start: {exc}\n{self.log()[-3000:]}") from exc
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def kill9(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def terminate(self, timeout: float = 10.0) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.popen.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any, what: str) -> None:
        super().__init__(f"{what} -> HTTP {status}: {body}")
        self.status = status
        self.body = body


class Api:
    """A bearer-token JSON client (the node's and the hub's staff API look alike)."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username, self.password, self.timeout = username, password, timeout
        self.session = requests.Session()
        self.token: str | None = None

    def login(self) -> None:
        r = self.session.post(
            f"{self.base_url}/api/v1/session",
            json={"username": self.username, "password": self.password},
            timeout=self.timeout,
        )
        if r.status_code >= 400:
            raise ApiError(r.status_code, r.text, "login")
        self.token = r.json()["token"]

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        if self.token is None:
            self.login()
        for attempt in (1, 2):
            r = self.session.request(
                method,
                f"{self.base_url}{path}",
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
            if r.status_code == 401 and attempt == 1:
                self.login()  # the process restarted: its in-memory sessions are gone
                continue
            break
        try:
            data = r.json()
        except ValueError:
            data = r.text
        if r.status_code >= 400:
            raise ApiError(r.status_code, data, f"{method} {path}")
        return data

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, body)


@dataclass
class HubProc:
    root: Path
    port: int = field(default_factory=free_port)
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    proc: Proc | None = None

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'hub.db'}"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def init(self) -> HubProc:
        self.root.mkdir(parents=True, exist_ok=True)
        run_cli(["central-hub", "init", "--db", self.db_url], env={"HUB_ADMIN_PASSWORD": self.admin_password})
        self.proc = Proc(
            "hub",
            ["central-hub", "serve", "--db", self.db_url, "--host", HOST, "--port", str(self.port)],
            self.port,
            {},
            self.root,
        )
        return self

    def start(self) -> HubProc:
        assert self.proc is not None
        self.proc.start()
        return self

    def token(self, *, union: str | None = None, upazila: str | None = None) -> str:
        args = ["central-hub", "enrollment-token", "--db", self.db_url]
        args += ["--union", union] if union else ["--upazila", str(upazila)]
        return run_cli(args).strip().splitlines()[-1]

    def staff(self) -> Api:
        return Api(self.url, "admin", self.admin_password)

    def conflicts(self, status: str = "open") -> list[dict[str, Any]]:
        api, items, cursor = self.staff(), [], None
        while True:
            params: dict[str, Any] = {"status": status, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/api/v1/conflicts", **params)
            items += page["items"]
            cursor = page.get("next")
            if not cursor:
                return items


@dataclass
class NodeProc:
    name: str
    root: Path
    union: str
    hub_url: str
    port: int = field(default_factory=free_port)
    operator: str = "operator"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    sync_interval: float = 0
    proc: Proc | None = None
    _api: Api | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / self.name

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "FIELD_NODE_OPERATOR": self.operator,
            "FIELD_NODE_OPERATOR_PASSWORD": self.password,
            "FIELD_NODE_SYNC_INTERVAL": str(self.sync_interval),
        }

    def init(self) -> NodeProc:
        run_cli(
            ["field-node", "init", "--data-dir", str(self.data_dir), "--union", self.union, "--hub", self.hub_url],
            env=self.env,
        )
        self.proc = Proc(
            self.name,
            ["field-node", "serve", "--data-dir", str(self.data_dir), "--host", HOST, "--port", str(self.port)],
            self.port,
            self.env,
            self.root,
        )
        return self

    def enroll(self, token: str) -> str:
        return run_cli(["field-node", "enroll", "--data-dir", str(self.data_dir), "--token", token], env=self.env)

    def cli(self, *args: str) -> str:
        return run_cli(["field-node", *args], env=self.env)

    def start(self) -> NodeProc:
        assert self.proc is not None
        self.proc.start()
        return self

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.url, self.operator, self.password)
        return self._api

    def sync(self) -> dict[str, Any]:
        out: dict[str, Any] = self.api.post("/api/v1/sync")
        return out

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = self.api.get("/api/v1/sync/status")
        return out

    def all(self, route: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = self.api.get(f"/api/v1/{route}", **params)
            items += page["items"]
            cursor = page.get("next")
            if not cursor:
                return items


def stop_all(procs: list[Proc | None]) -> None:
    for p in procs:
        if p is not None:
            with contextlib.suppress(Exception):
                p.terminate(5)
