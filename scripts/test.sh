#!/usr/bin/env bash
# Sets up the machine and runs every test: unit and integration tests on real SQLite files, the
# Redis tests against a throw-away redis-server and the Postgres ledger's tests against a
# throw-away PostgreSQL server, both on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
swift build --build-tests
# A test that hangs fails the run instead of holding CI forever (a full run takes 1-2 minutes).
timeout --kill-after=30 "${TEST_TIMEOUT_SECONDS:-900}" scripts/with-redis.sh scripts/with-postgres.sh swift test --skip-build "$@"
