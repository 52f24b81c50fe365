#!/usr/bin/env bash
# The image's smoke test (`make image-test`): the image's gateway and workers (`dipgw up`)
# against the project's local Kafka and embedded PostgreSQL, one signed settlement list pushed
# and scored. Needs the image (`make image`) and the project's virtualenv (`make install`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CONTAINERS_CONF="$here/containers.conf"
cd "$root"
exec "$root/.venv/bin/python" "$here/smoke.py" "$@"
