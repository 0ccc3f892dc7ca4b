#!/usr/bin/env bash
# Formats the Swift sources with swift-format (shipped with the toolchain as `swift format`),
# using the repository's .swift-format; `--lint` only checks, and fails on any finding (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(Sources Tests Examples Benchmarks Fuzz Package.swift)
if [ "${1:-}" = "--lint" ]; then
    swift format lint --recursive --strict --parallel "${paths[@]}"
else
    swift format format --in-place --recursive --parallel "${paths[@]}"
fi
