#!/usr/bin/env bash
# Installs what OutboxConsumer needs on a Debian/Ubuntu machine: the C libraries it links
# (SQLite, hiredis), pkg-config to find them, and redis-server for the Redis tests and examples.
# Idempotent: does nothing when everything is already there. The Swift toolchain itself is
# expected on PATH (https://www.swift.org/install/).
set -euo pipefail

packages=(pkg-config libsqlite3-dev sqlite3 libhiredis-dev redis-server)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]} > 0)); then
    echo "setup: installing ${missing[*]}" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH; install a Swift 6.2+ toolchain" >&2; exit 1; }
