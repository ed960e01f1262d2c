#!/usr/bin/env bash
# Make this machine able to run job containers: Podman with its Docker-compatible API socket, and the
# locally built images conveyor/debian:bookworm and conveyor/debian-python:bookworm (no registry is
# reachable, so images come from debootstrap). Idempotent: every step is skipped when already done.
#
#   CONVEYOR_CONTAINER_SOCKET  the API socket to serve (default unix:///run/podman/podman.sock)
#   CONVEYOR_IMAGE_CACHE       where built root filesystems are kept (default /var/cache/conveyor)
#   CONVEYOR_DEBIAN_MIRROR     the Debian mirror for debootstrap (default http://deb.debian.org/debian)
set -Eeuo pipefail

SOCKET_URL="${CONVEYOR_CONTAINER_SOCKET:-unix:///run/podman/podman.sock}"
SOCKET_PATH="${SOCKET_URL#unix://}"
CACHE="${CONVEYOR_IMAGE_CACHE:-/var/cache/conveyor}"
MIRROR="${CONVEYOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CONF=/etc/containers/containers.conf
SERVICE_LOG=/var/log/conveyor-podman-service.log
BASE_IMAGE=conveyor/debian:bookworm
PYTHON_IMAGE=conveyor/debian-python:bookworm

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ "$SOCKET_URL" == unix://* ]] || fail "CONVEYOR_CONTAINER_SOCKET must be a unix:// URL, got '$SOCKET_URL'"
[[ $(id -u) -eq 0 ]] || fail "must run as root (installs packages, writes $CONF, serves $SOCKET_PATH)"

install_packages() {
    local wanted=(podman runc debootstrap uidmap slirp4netns netavark aardvark-dns iptables catatonit curl ca-certificates)
    local missing=()
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "packages present: ${wanted[*]}"
        return
    fi
    apt_install "${missing[@]}"
}

write_config() {
    local wanted
    wanted=$(cat <<'EOF'
# Written by Conveyor's scripts/containers.sh.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
EOF
)
    mkdir -p "$(dirname "$CONF")"
    if [[ -f "$CONF" ]] && [[ "$(cat "$CONF")" == "$wanted" ]]; then
        say "$CONF is up to date"
        return
    fi
    if [[ -f "$CONF" ]] && ! grep -q "Written by Conveyor" "$CONF"; then
        cp "$CONF" "$CONF.before-conveyor"
        say "kept the previous $CONF as $CONF.before-conveyor"
    fi
    printf '%s\n' "$wanted" >"$CONF"
    say "wrote $CONF (runtime runc, default ulimits, netavark networks)"
}

socket_answers() {
    [[ -S "$SOCKET_PATH" ]] && curl -fsS --max-time 5 --unix-socket "$SOCKET_PATH" http://d/_ping >/dev/null 2>&1
}

start_service() {
    if socket_answers; then
        say "API socket $SOCKET_URL answers"
        return
    fi
    say "starting podman system service on $SOCKET_URL (log: $SERVICE_LOG)"
    mkdir -p "$(dirname "$SOCKET_PATH")"
    rm -f "$SOCKET_PATH"
    # Started from /: the service (and conmon under it) keeps its working directory, which must outlive the
    # folder this script was called from, or no container starts ("Failed to get working directory").
    (cd / && exec setsid nohup podman system service --time=0 "$SOCKET_URL" >>"$SERVICE_LOG" 2>&1 </dev/null) &
    for _ in $(seq 1 100); do
        socket_answers && { say "API socket answers"; return; }
        sleep 0.1
    done
    tail -n 20 "$SERVICE_LOG" >&2 || true
    fail "podman system service did not answer on $SOCKET_PATH within 10s"
}

# Build a root filesystem tarball once: debootstrap minbase, plus extra packages, without apt's caches.
build_rootfs() {
    local tarball=$1 include=$2
    if [[ -s "$tarball" ]]; then
        say "using cached root filesystem $tarball"
        return
    fi
    local folder
    folder=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    say "debootstrap --variant=minbase bookworm (+${include:-nothing}) into $folder"
    local started=$SECONDS
    mkdir -p "$CACHE/debs"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" ${include:+--include="$include"} bookworm "$folder" "$MIRROR" \
        >"$folder.log" 2>&1 || { tail -n 20 "$folder.log" >&2; rm -rf "$folder"; fail "debootstrap failed (log above)"; }
    rm -rf "$folder"/var/cache/apt/archives/*.deb "$folder"/var/lib/apt/lists/* "$folder.log"
    tar -C "$folder" -cf "$tarball.partial" . || { rm -rf "$folder"; fail "could not write $tarball"; }
    mv "$tarball.partial" "$tarball"
    rm -rf "$folder"
    say "built $tarball in $((SECONDS - started))s"
}

build_image() {
    local image=$1 include=$2 name=$3
    if podman image exists "$image"; then
        say "image $image exists"
        return
    fi
    mkdir -p "$CACHE"
    build_rootfs "$CACHE/$name.tar" "$include"
    podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        "$CACHE/$name.tar" "$image" >/dev/null || fail "podman import of $image failed"
    say "imported $image"
}

install_packages
write_config
start_service
build_image "$BASE_IMAGE" "" debian-bookworm
build_image "$PYTHON_IMAGE" "python3-minimal" debian-python-bookworm
say "ready: $SOCKET_URL serves $BASE_IMAGE and $PYTHON_IMAGE"
