#!/usr/bin/env bash
# Builds dipgw's container image with podman (`make image`): IMAGE (default dipgw:latest).
#
# No container registry is reachable from this project's machines, so the Debian bookworm
# base is made here: `debootstrap --variant=minbase bookworm` from the Debian mirror in apt's
# sources, once per machine into ~/.cache/dipgw/container, imported as dipgw-base:bookworm.
# podman runs with runc and deploy/container/containers.conf (crun fails here on cgroups and
# rlimits). Installs podman, runc and debootstrap with apt-get when missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
IMAGE="${IMAGE:-dipgw:latest}"
BASE_IMAGE="dipgw-base:bookworm"
cache="${DIPGW_CACHE_DIR:-$HOME/.cache/dipgw}/container"
export CONTAINERS_CONF="$here/containers.conf"
podman=(podman --runtime runc)

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "the image build needs: ${need[*]} — install them with your package manager" >&2
    exit 1
  fi
  echo "installing ${need[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The Debian mirror apt uses here (deb822 "URIs:" or a one-line "deb" entry), for debootstrap.
mirror() {
  local uri
  uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ {print $2}' | grep -v -- '-security' | head -n1 || true)"
  if [ -z "$uri" ]; then
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" && $2 !~ /^\[/ {print $2} $1 == "deb" && $2 ~ /^\[/ {print $3}' |
      grep -v -- '-security' | head -n1 || true)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if ! "${podman[@]}" image exists "$BASE_IMAGE"; then
  if [ ! -f "$cache/rootfs/etc/debian_version" ]; then
    m="$(mirror)"
    echo "debootstrap bookworm (minbase) from $m into $cache/rootfs" >&2
    mkdir -p "$cache"
    rm -rf "$cache/rootfs.tmp"
    debootstrap --variant=minbase bookworm "$cache/rootfs.tmp" "$m" >"$cache/debootstrap.log" 2>&1 ||
      { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
    # bookworm-updates from the same mirror; security updates from the matching archive
    cat >"$cache/rootfs.tmp/etc/apt/sources.list" <<SOURCES
deb $m bookworm main
deb $m bookworm-updates main
deb ${m%/debian}/debian-security bookworm-security main
SOURCES
    rm -rf "$cache/rootfs.tmp/var/cache/apt/archives/"*.deb "$cache/rootfs.tmp/var/lib/apt/lists/"*
    mv "$cache/rootfs.tmp" "$cache/rootfs"
  fi
  echo "importing $BASE_IMAGE" >&2
  tar --numeric-owner -C "$cache/rootfs" -c . |
    "${podman[@]}" import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
fi

# The build context: the package's sources only (no .venv, .dipgw, .git), the Containerfile,
# the image's default settings (dipgw.toml), and this machine's CA bundle, which pip needs to reach PyPI here (build stage only).
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/src"
tar -C "$root" --exclude=__pycache__ --exclude='*.pyc' -c \
  pyproject.toml README.md gateway contracts adapters workers | tar -C "$ctx/src" -x
cp "$here/Containerfile" "$here/dipgw.toml" "$ctx/"
ca="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
if [ -f "$ca" ]; then cp "$ca" "$ctx/build-ca.crt"; else : >"$ctx/build-ca.crt"; fi
if [ ! -s "$ctx/build-ca.crt" ]; then
  # an empty file is no CA bundle: let pip use its own
  sed -i 's|^ENV PIP_CERT=/tmp/build-ca.crt |ENV |' "$ctx/Containerfile"
fi

start=$(date +%s)
"${podman[@]}" build --network host --layers --tag "$IMAGE" --file "$ctx/Containerfile" "$ctx"
size="$("${podman[@]}" image inspect --format '{{.Size}}' "$IMAGE")"
echo "built $IMAGE in $(( $(date +%s) - start )) s: $(( size / 1024 / 1024 )) MiB" >&2
