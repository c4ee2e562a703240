# shellcheck shell=bash
# The connection settings the tests read, for the engines that up.sh starts.
# usage: source deploy/engines/env.sh   (values already set in the environment win)
# No `set -e` or other shell options here: this file runs inside the caller's shell.

export FLOWLOOM_TEST_PG_URL="${FLOWLOOM_TEST_PG_URL:-postgres://postgres@127.0.0.1:${FLOWLOOM_PG_PORT:-5432}/flowloom_test}"
export FLOWLOOM_TEST_REDIS_URL="${FLOWLOOM_TEST_REDIS_URL:-redis://127.0.0.1:${FLOWLOOM_REDIS_PORT:-6379}}"
export FLOWLOOM_TEST_KAFKA_BROKERS="${FLOWLOOM_TEST_KAFKA_BROKERS:-127.0.0.1:${FLOWLOOM_KAFKA_PORT:-9092}}"
