#!/usr/bin/env bash
# Asks a running Hearth how it is, for operators, cron and monitoring: a readable summary
# and an exit status in the Nagios convention.
#   0  ok: every configured component is ok (with --ready: /readyz answered 200)
#   1  degraded: an optional component (redis, llm, worker, mail) is unreachable
#   2  down: the database is unreachable, /readyz is not 200, or Hearth does not answer
#   3  unknown: bad arguments, or an answer that is not Hearth's
# Needs curl; python3, when present, makes the summary a table.
set -euo pipefail

usage="usage: health-check.sh [--url URL] [--ready] [--timeout SECONDS] [--json] [--quiet]
  --url URL      where Hearth answers (default: \$HEARTH_URL, else http://127.0.0.1:8000)
  --ready        ask /readyz (is it serving?) instead of /health (every component)
  --timeout S    give up after S seconds (default 5)
  --json         print Hearth's JSON answer instead of the summary
  --quiet        print nothing; the exit status says it all
Anonymous callers get statuses and latencies; set HEARTH_TOKEN to an API token with read
scope (hearth token create NAME --scope read) to get each component's detail too."

url=${HEARTH_URL:-http://127.0.0.1:8000}
path=/health
timeout=5
output=summary

while [ $# -gt 0 ]; do
    case $1 in
        --url)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 3; }
            url=$2
            shift 2
            ;;
        --url=*) url=${1#--url=}; shift ;;
        --ready) path=/readyz; shift ;;
        --timeout)
            [ $# -ge 2 ] || { echo "$usage" >&2; exit 3; }
            timeout=$2
            shift 2
            ;;
        --json) output=json; shift ;;
        --quiet | -q) output=quiet; shift ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) echo "$usage" >&2; exit 3 ;;
    esac
done

case $url in
    http://* | https://*) ;;
    *) echo "health-check: --url must start with http:// or https:// (got '$url')" >&2; exit 3 ;;
esac
if ! [[ $timeout =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "health-check: --timeout must be a number of seconds (got '$timeout')" >&2
    exit 3
fi
if ! command -v curl >/dev/null 2>&1; then
    echo "health-check: curl is not installed (apt-get install curl)" >&2
    exit 3
fi

target=${url%/}$path
body=$(mktemp)
errors=$(mktemp)
trap 'rm -f "$body" "$errors"' EXIT

# report MESSAGE: the summary (with --json, only failures, on stderr; with --quiet, nothing).
report() {
    case $output in
        summary) printf '%s\n' "$1" ;;
        json) [ "${2:-}" = failure ] && printf '%s\n' "$1" >&2 ;;
    esac
    return 0
}

# The token goes to curl on standard input, not on its command line, where `ps` shows it.
credentials=""
if [ -n "${HEARTH_TOKEN:-}" ]; then
    credentials="header = \"Authorization: Bearer ${HEARTH_TOKEN}\""
fi
if ! code=$(curl --silent --show-error --max-time "$timeout" --output "$body" \
    --write-out '%{http_code}' --config - "$target" 2>"$errors" <<<"$credentials"); then
    report "DOWN: $target does not answer ($(sed 's/^curl: ([0-9]*) //' "$errors" | head -n 1))" failure
    exit 2
fi

if [ "$output" = json ]; then
    cat "$body"
    echo
fi

if [ "$path" = /readyz ]; then
    if [ "$code" = 200 ]; then
        report "OK: $target answered 200 (ready)"
        exit 0
    fi
    report "DOWN: $target answered $code: $(head -c 300 "$body")"
    exit 2
fi

# /health always answers 200 with {"status": "ok" | "degraded" | "down", "checks": {...}}.
# summarize FILE: the status on the first line, then the summary.
summarize() {
    python3 - "$1" "$target" <<'PYTHON'
import json
import sys

path, target = sys.argv[1], sys.argv[2]
try:
    with open(path, encoding="utf-8") as answer:
        report = json.load(answer)
    status, checks = report["status"], report["checks"]
except (OSError, ValueError, KeyError, TypeError):
    sys.exit(3)
print(status)
print(f"{status.upper()}: hearth {report.get('version', '?')} at {target}")
for name, check in checks.items():
    latency = check.get("latency_ms") or 0
    shown = f"{latency:.0f} ms" if latency else ""
    print(f"  {name:<7} {check.get('status', '?'):<13} {shown:>7}  {check.get('detail') or ''}")
PYTHON
}

status=$(sed -n 's/^{"status":"\([a-z]*\)".*/\1/p' "$body")
if command -v python3 >/dev/null 2>&1; then
    if summary=$(summarize "$body"); then
        status=${summary%%$'\n'*}
        report "${summary#*$'\n'}"
    else
        status=""
    fi
else
    report "${status^^}: $target: $(head -c 500 "$body")"
fi

case $code:$status in
    200:ok) exit 0 ;;
    200:degraded) exit 1 ;;
    200:down) exit 2 ;;
    *)
        report "UNKNOWN: $target answered $code, not a Hearth health report: $(head -c 300 "$body")" failure
        exit 3
        ;;
esac
