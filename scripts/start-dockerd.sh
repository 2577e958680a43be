#!/usr/bin/env bash
# Start a Docker engine that is safe on a shared machine, and make the local Python base image.
#
# Why the flags: a default dockerd creates a 172.17.0.0/16 bridge and iptables rules, and
# publishes ports on every address; traffic to private address ranges may be forbidden. With
# --bridge=none containers get no bridge network: run them with network_mode="host" and bind
# servers to 127.0.0.1 (haj does: `haj container start --network host`); --ip=127.0.0.1 keeps
# any published port on loopback; --iptables=false and --ip-masq=false leave the firewall alone.
# Why the base image: when no registry can be pulled from, `haj-base:bookworm` (Debian bookworm
# with python3, venv and pip, from Debian's own packages via debootstrap) stands in for
# python:3.11-slim. Set HAJ_BASE_IMAGE to use another name.
#
# Usage:  eval "$(scripts/start-dockerd.sh)"     # prints `export DOCKER_HOST=... HAJ_BASE_IMAGE=...`
# Stop:   kill "$(cat ${HAJ_DOCKER_ROOT:-/tmp/haj-docker}/dockerd.pid)"
# Needs root (dockerd, debootstrap); installs docker.io and debootstrap with apt-get if missing.
set -euo pipefail
root=${HAJ_DOCKER_ROOT:-/tmp/haj-docker}
sock=unix://$root/docker.sock
image=${HAJ_BASE_IMAGE:-haj-base:bookworm}
mkdir -p "$root"
log() { echo "start-dockerd: $*" >&2; }

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing docker.io and debootstrap"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >&2
fi

if ! DOCKER_HOST=$sock docker info >/dev/null 2>&1; then
  log "starting dockerd (no bridge, no iptables, loopback only) on $sock"
  setsid dockerd --host "$sock" --data-root "$root/data" --exec-root "$root/exec" \
    --pidfile "$root/dockerd.pid" --bridge=none --iptables=false --ip-masq=false \
    --ip=127.0.0.1 >"$root/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 120); do
    DOCKER_HOST=$sock docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  DOCKER_HOST=$sock docker info >/dev/null 2>&1 || {
    log "dockerd did not start; see $root/dockerd.log"
    tail -20 "$root/dockerd.log" >&2
    exit 1
  }
fi

if ! DOCKER_HOST=$sock docker image inspect "$image" >/dev/null 2>&1; then
  # the Debian mirror this machine already uses
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  log "building $image from Debian packages (about a minute)"
  rm -rf "$root/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$root/rootfs" ${mirror:+"$mirror"} >"$root/debootstrap.log" 2>&1 || {
    log "debootstrap failed; see $root/debootstrap.log"
    tail -20 "$root/debootstrap.log" >&2
    exit 1
  }
  tar -C "$root/rootfs" -c . | DOCKER_HOST=$sock docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    - "$image" >/dev/null
  rm -rf "$root/rootfs"
fi

echo "export DOCKER_HOST=$sock HAJ_BASE_IMAGE=$image"
