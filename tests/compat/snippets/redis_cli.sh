#!/bin/sh
set -eu
cli() { redis-cli -u "${TASKSTORE_URL:-redis://127.0.0.1:6379}" "$@"; }
status() { sed 's/.*"status":"\([a-z_]*\)".*/\1/'; }

cli TASK.CREATE tools/call TTL 60000 ID report-1 >/dev/null  # ID: choose the task id
cli TASK.GET report-1 | status                                # working
cli TASK.COMPLETE report-1 completed '{"content":[{"type":"text","text":"done"}]}' | status
cli TASK.RESULT report-1                                      # the result, as stored
cli TASK.CANCEL report-1 | grep -o '^[A-Z]*'                   # INVALIDTRANSITION
