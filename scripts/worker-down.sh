#!/usr/bin/env bash
# Stop a Worker started by scripts/worker-up.sh (its whole process group), bounded in time.
set -u
state="${1:?usage: worker-down.sh STATE_DIR}"
pidfile="$state/worker.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
kill -KILL -- "-$pid" 2>/dev/null || true
rm -f "$pidfile"
