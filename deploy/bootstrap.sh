#!/usr/bin/env bash
# Installs what dipgw needs from the OS when it is missing: Java 17+ (runs the Kafka broker)
# and Maven (fetches the broker from Maven Central), Chromium for the /ops page test, and promtool
# (Debian's prometheus package) for the alert rules' tests, Mono's mcs for the C# signing snippet's
# test. Called by `make`; a no-op when present.
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v "${PYTHON:-python3}" >/dev/null 2>&1 || need+=(python3 python3-venv)
# Chromium (Debian's package) opens the /ops dashboard in its test, with CJK fonts for the
# screenshot. Where it cannot be installed, that test fails and says why (no test skips).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium with apt-get" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends chromium fonts-noto-cjk; } ||
    echo "chromium could not be installed: the /ops page test will fail" >&2
fi
# promtool (Debian's prometheus package) runs the alert rules' unit tests
# (tests/deploy/test_prometheus_rules.py); only the tool is wanted, so the package's service is
# stopped and disabled where systemd runs it. Where it cannot be installed, that test fails.
if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing prometheus (for promtool) with apt-get" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends prometheus; } ||
    echo "prometheus could not be installed: the alert-rule tests will fail" >&2
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi
# Mono's C# compiler runs the C# signing snippet in its test (tests/gateway/test_examples.py,
# docs/examples/signing/Sign.cs): mono-mcs and System.Net.Http, about 20 s once. Where it cannot
# be installed, that test fails and says so.
if ! command -v mcs >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing mono-mcs (for the C# signing snippet) with apt-get" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends mono-mcs libmono-system-net-http4.0-cil; } ||
    echo "mono-mcs could not be installed: the C# signing snippet test will fail" >&2
fi
# MariaDB's server and OpenSSH's sshd run in the feed sources' tests (tests/feeds/): a HIS
# intermediate database on MySQL/MariaDB and an SFTP drop account, each started by the tests in a
# scratch directory on a free port (the packages' own services are not used). Where they cannot
# be installed, those tests fail and say so.
if { ! command -v mariadbd >/dev/null 2>&1 || ! [ -x /usr/sbin/sshd ]; } && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing mariadb-server and openssh-server (for the feed source tests) with apt-get" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends mariadb-server openssh-server; } ||
    echo "mariadb-server/openssh-server could not be installed: the feed source tests will fail" >&2
  if [ -d /run/systemd/system ]; then
    systemctl disable --now mariadb.service ssh.service >/dev/null 2>&1 || true
  fi
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "dipgw needs: ${need[*]} — install them with your package manager" >&2
  exit 1
fi
echo "installing ${need[*]} with apt-get" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
