"""The container image's smoke test (`make image-test`, deploy/container/smoke.sh).

Runs with the project's virtualenv on the host: starts the project's local Kafka and embedded
PostgreSQL (`gateway.runtime.LocalServices`, in a temporary state directory), then, all from
the image and with `podman --runtime runc run --network host`: makes a master key, imports
Guangzhou's sample DIP rules, registers a hospital, issues a city token and runs `dipgw up`
(gateway + workers). One signed settlement list (`gateway.signing.signed_headers`) is pushed
to the container's gateway, and the test waits until `GET /v1/scored` with the city token
shows it scored. Prints the time of each step; exits non-zero, with the container's log, on
any failure. Everything it started is stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence

import aiohttp
import msgspec

from adapters.runtime.settings import load_settings
from contracts.samples import make_settlement
from gateway.demo_feed import hospital_case_mix
from gateway.runtime import LocalServices
from gateway.signing import signed_headers

HOSPITAL, CITY, LEVEL = "H44010000001", "440100", "3A"
RULES = "/opt/dipgw/venv/lib/python3.11/site-packages/workers/dip/data/440100-2026.toml"
CONTAINER = f"dipgw-smoke-{os.getpid()}"
T0 = time.monotonic()


def say(what: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {what}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Image:
    """`podman --runtime runc run --network host` of the image, with the smoke test's env."""

    def __init__(self, image: str, env: dict[str, str], mounts: Sequence[str]) -> None:
        self.image, self.env, self.mounts = image, env, list(mounts)

    def args(self, *extra: str) -> list[str]:
        cmd = ["podman", "--runtime", "runc", "run", "--network", "host", *extra]
        for key, value in self.env.items():
            cmd += ["-e", f"{key}={value}"]
        for path in self.mounts:
            cmd += ["-v", f"{path}:{path}"]
        return [*cmd, self.image]

    def run(self, *command: str) -> str:
        """One `dipgw` command in a throw-away container; its output's last line."""
        done = subprocess.run(
            [*self.args("--rm"), *command], capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise SystemExit(f"dipgw {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout.strip().splitlines()[-1]

    def start(self, *command: str, read_only: bool = False) -> None:
        extra = ["--read-only", "--tmpfs", "/tmp", "-e", "DIPGW_STATE_DIR=/tmp/dipgw"]
        subprocess.run(
            [*self.args("-d", "--name", CONTAINER, *(extra if read_only else [])), *command],
            check=True,
            capture_output=True,
            timeout=120,
        )

    @staticmethod
    def logs() -> str:
        done = subprocess.run(["podman", "logs", CONTAINER], capture_output=True, text=True)
        return done.stdout + done.stderr

    @staticmethod
    def remove() -> None:
        subprocess.run(
            ["podman", "--runtime", "runc", "rm", "-f", "-t", "10", CONTAINER],
            capture_output=True,
            timeout=120,
        )


async def wait_ready(url: str, deadline: float) -> None:
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit(f"the container's gateway was not ready at {url}/readyz in time")


async def push_and_wait(url: str, secret: str, token: str, deadline: float) -> dict[str, object]:
    rng = random.Random()
    doc = make_settlement(
        rng,
        mdtrtarea_admvs=CITY,
        fixmedins_code=HOSPITAL,
        serial=rng.randrange(10**9),
        case_mix=hospital_case_mix(CITY, LEVEL),
    )
    setl_id = doc["input"]["setlinfo"]["setl_id"]
    body = msgspec.json.encode(doc)
    path = "/v1/settlements"
    headers = signed_headers(HOSPITAL, secret.encode(), "POST", path, body)
    headers["Content-Type"] = "application/json"
    async with aiohttp.ClientSession() as http:
        async with http.post(url + path, data=body, headers=headers) as resp:
            answer = await resp.json()
            if resp.status != 202:
                raise SystemExit(f"push answered {resp.status}: {answer}")
        say(f"pushed {setl_id}: 202, receipt {answer.get('receipt_id')}")
        pushed = time.monotonic()
        auth = {"Authorization": f"Bearer {token}"}
        while time.monotonic() < deadline:
            async with http.get(url + "/v1/scored?limit=1000", headers=auth) as resp:
                page = await resp.json()
                if resp.status != 200:
                    raise SystemExit(f"GET /v1/scored answered {resp.status}: {page}")
            for item in page["items"]:
                if item.get("setl_id") == setl_id and item.get("status") == "scored":
                    say(f"scored {time.monotonic() - pushed:.1f} s after the push")
                    return dict(item)
            await asyncio.sleep(0.5)
    raise SystemExit(f"{setl_id} was not scored in time")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=os.environ.get("IMAGE", "dipgw:latest"))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole test")
    args = parser.parse_args(argv)
    deadline = T0 + args.timeout
    with tempfile.TemporaryDirectory(prefix="dipgw-smoke-") as state:
        os.chmod(state, 0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
        env["DIPGW_STATE_DIR"] = state
        settings = load_settings(environ=env)
        with LocalServices(settings) as services:
            say(f"local Kafka at {services.bootstrap}, PostgreSQL at {services.dsn}")
            # the embedded server listens on a Unix socket: the container gets its folder
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(services.dsn).query)
            mounts = query.get("host", [])
            for folder in mounts:
                # PostgreSQL checks its data folder's mode (0700) only at start; the image's
                # non-root user needs to pass through it to the socket (mode 0777) now
                os.chmod(folder, 0o711)
            port = free_port()
            image = Image(
                args.image,
                {
                    "DIPGW_KAFKA_BOOTSTRAP": services.bootstrap,
                    "DIPGW_PG_DSN": services.dsn,
                    "DIPGW_HTTP_HOST": "127.0.0.1",
                    "DIPGW_HTTP_PORT": str(port),
                    "DIPGW_LOG_LEVEL": "info",
                },
                mounts,
            )
            image.env["DIPGW_AUTH_MASTER_KEY"] = image.run("hospitals", "new-key")
            say("master key made by the image (dipgw hospitals new-key)")
            image.run("db", "migrate")
            say("schema migrated (dipgw db migrate)")
            image.run("rules", "import", CITY, "2026", RULES)
            say(f"{CITY} 2026 sample rules imported (dipgw rules import)")
            secret = image.run(
                "hospitals", "add", HOSPITAL, "--name", "广州市第一人民医院",
                "--admdvs", CITY, "--level", LEVEL,
            )  # fmt: skip
            say(f"hospital {HOSPITAL} registered (dipgw hospitals add)")
            token = image.run(
                "tokens", "issue", "--role", "city", "--admdvs", CITY, "--label", "smoke"
            )
            say("city token issued (dipgw tokens issue)")
            try:
                # as deploy/compose and deploy/k8s run it: read-only root, state in a tmpfs
                image.start("up", read_only=True)
                url = f"http://127.0.0.1:{port}"
                asyncio.run(wait_ready(url, deadline))
                say(f"container {CONTAINER}: dipgw up (gateway + workers) ready at {url}")
                item = asyncio.run(push_and_wait(url, secret, token, deadline))
                print(msgspec.json.encode(item).decode())
            except BaseException:
                print(Image.logs()[-6000:], file=sys.stderr)
                raise
            finally:
                Image.remove()
    say("image smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
