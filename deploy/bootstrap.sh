#!/usr/bin/env bash
# Installs what dipgw needs from the OS when it is missing: Java 17+ (runs the Kafka broker)
# and Maven (fetches the broker from Maven Central). Called by `make`; a no-op when present.
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v "${PYTHON:-python3}" >/dev/null 2>&1 || need+=(python3 python3-venv)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "dipgw needs: ${need[*]} — install them with your package manager" >&2
  exit 1
fi
echo "installing ${need[*]} with apt-get" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
