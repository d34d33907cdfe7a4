"""A private redis-server for tests (never the machine's shared Redis): a free port, a temporary
directory, no persistence, optional password and TLS (a throwaway CA), stop and restart on the same
port. Used by the subscriber, publisher and end-to-end tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from aws_masker_gateway.orphans import die_with_parent
from aws_masker_stack.ports import free_port

CHANNEL = "aws-masker:events"
WAIT_S = 15.0


# --- redis-server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = aws-masker-test
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def make_tls_files(directory: Path, name: str = "test") -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        import pytest

        pytest.skip("openssl CLI not found: cannot make a test CA")
    directory.mkdir(parents=True, exist_ok=True)
    cnf = directory / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF)
    ca_key, ca = directory / f"{name}-ca.key", directory / f"{name}-ca.crt"
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-config", cnf,
         "-extensions", "v3_ca", "-subj", f"/CN={name}-ca"],
        [openssl, "req", "-new", *ec, "-keyout", key, "-out", csr, "-config", cnf, "-subj", "/CN=localhost"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", "2", "-days", "2",
         "-out", cert, "-extfile", cnf, "-extensions", "v3_server"],
    ]  # fmt: skip
    for command in commands:
        subprocess.run([str(part) for part in command], check=True, capture_output=True, timeout=30)
    return TlsFiles(ca=ca, cert=cert, key=key)


def redis_server_has_tls() -> bool:
    """Was redis-server built with TLS? (Its binary then links OpenSSL; Debian's does.)"""
    path = shutil.which("redis-server")
    if path is None:
        return False
    try:
        return b"SSL_CTX_new" in Path(path).resolve().read_bytes()
    except OSError:
        return False


class RedisServer:
    """A private redis-server on a free port (the same port across restarts); no persistence."""

    def __init__(self, workdir: Path, *, password: str | None = None, tls: TlsFiles | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.tls = tls
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "redis.log"

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        query = f"?ssl_ca_certs={self.tls.ca}" if self.tls else ""
        return f"{scheme}://127.0.0.1:{self.port}/0{query}"

    def argv(self) -> list[str]:
        argv = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.workdir), "--daemonize", "no"]
        if self.tls:
            argv += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert)]
            argv += ["--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca)]
            argv += ["--tls-auth-clients", "no"]
        else:
            argv += ["--port", str(self.port)]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def client(self) -> redis.Redis:
        kwargs: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "password": self.password}
        if self.tls:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca))
        return redis.Redis(socket_connect_timeout=2, socket_timeout=5, **kwargs)

    def start(self) -> RedisServer:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not on PATH (.ci/run installs it)")
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()
        deadline = time.monotonic() + WAIT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with self.client() as client:
                    client.ping()
                return self
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server not ready:\n{self.log_tail()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def publish(self, payloads: list[bytes], channel: str = CHANNEL) -> None:
        """PUBLISH each payload, in one pipeline; every PUBLISH must reach a subscriber."""
        with self.client() as client:
            pipe = client.pipeline(transaction=False)
            for payload in payloads:
                pipe.publish(channel, payload)
            receivers = pipe.execute()
        assert all(n >= 1 for n in receivers), f"a PUBLISH reached no subscriber: {receivers}"


class ChannelListener:
    """A raw SUBSCRIBE on a channel of ``server``, collecting every message in a thread (it keeps
    trying while the server is down)."""

    def __init__(self, server: RedisServer, channel: str = CHANNEL) -> None:
        self.client = server.client()
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(channel)
        self.raw: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            except redis.RedisError:
                time.sleep(0.1)
                continue
            if message:
                self.raw.append(message["data"])

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in list(self.raw)]

    def events(self) -> list[dict[str, Any]]:
        """Every event published, batches unpacked, without the publisher's stats."""
        out: list[dict[str, Any]] = []
        for message in self.messages:
            out += message["events"] if message["event_type"] == "batch" else [message]
        return [e for e in out if e["event_type"] != "publisher_stats"]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()
        self.client.close()
