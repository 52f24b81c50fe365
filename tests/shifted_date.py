"""Run pytest with the date shifted: `python tests/shifted_date.py 2027-03-15 tests/dip …`.

Proves the suite does not depend on the date. The pytest process (and the `dipgw` CLI
subprocesses it starts) run under libfaketime (`apt-get install faketime`) with a relative
offset — every process shares it and time still advances, so receipts and scorings stay
ordered across processes (an absolute `@date` would restart each process at that instant).
Kafka and PostgreSQL are started here first, on the real clock and without LD_PRELOAD, and
handed to the tests through DIPGW_KAFKA_BOOTSTRAP / DIPGW_PG_DSN, so libfaketime never reaches
the JVM or the database server. The broker accepts the tests' record timestamps although they
lie months ahead of its own clock (Kafka 4 refuses more than one hour by default).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import msgspec

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))

from adapters.runtime.settings import load_settings  # noqa: E402
from gateway.runtime import LocalServices  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) < 1 or shutil.which("faketime") is None:
        print(__doc__.splitlines()[0], "(needs the faketime command)", file=sys.stderr)
        return 2
    days = (date.fromisoformat(argv[0]) - date.today()).days
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")}
    state = Path(tempfile.mkdtemp(prefix="dipgw-shifted-"))
    settings = msgspec.structs.replace(load_settings(environ={}), state_dir=str(state))
    services = LocalServices(settings).start()
    try:
        assert services.kafka is not None
        props = services.kafka.home / "server.properties"
        services.kafka.stop()
        props.write_text(
            props.read_text() + "log.message.timestamp.after.max.ms=9223372036854775807\n"
        )
        bootstrap = services.kafka.start(owned=True)
        env.update(DIPGW_KAFKA_BOOTSTRAP=bootstrap, DIPGW_PG_DSN=services.dsn)
        command = ["faketime", "-f", f"{days:+d}d", sys.executable, "-m", "pytest", *argv[1:]]
        print(" ".join(command), f"# Kafka {bootstrap}, PostgreSQL in {state}", flush=True)
        return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    finally:
        services.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
