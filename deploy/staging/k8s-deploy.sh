#!/usr/bin/env bash
# CD to the Kubernetes staging cluster (GitLab job `deploy-staging`, image bitnami/kubectl): deploy one
# image, wait for the rollout, run the smoke test through the API Service, roll back on failure.
#
#   IMAGE=registry/cockpit TAG=1.4.0 deploy/staging/k8s-deploy.sh
#
# 1. copy deploy/k8s and set the image of every container (the kustomization's `images` entry: what
#    `kustomize edit set image` does), 2. delete the finished Jobs (a Job's pod template cannot change),
#    3. apply everything but the deployments and wait for the migration and model Jobs, 4. apply the
#    deployments and wait for `kubectl rollout status` of the scorer and the API, 5. run
#    `python -m api smoke` inside an API pod against the Service (one event in, one score out),
#    6. on any failure after step 4 started: `kubectl rollout undo` both deployments, wait, exit 1.
# A failed migration or model Job stops before step 4: the running pods are untouched.
# Variables: IMAGE, TAG (required); NAMESPACE (cockpit: the kustomization's), KUBE_CONTEXT (optional),
# ROLLOUT_TIMEOUT (300s), JOB_TIMEOUT (1800s: the first model build trains), SMOKE_TIMEOUT (120).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${IMAGE:?set IMAGE (e.g. \$CI_REGISTRY_IMAGE)}" "${TAG:?set TAG (e.g. \$CI_COMMIT_SHORT_SHA)}"
NS="${NAMESPACE:-cockpit}"
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-300s}"
JOB_TIMEOUT="${JOB_TIMEOUT:-1800s}"
SMOKE_TIMEOUT="${SMOKE_TIMEOUT:-120}"
DEPLOYMENTS=(cockpit-scorer cockpit-api)

say() { printf '[cd %s] %s\n' "$(date -u +%T)" "$*"; }
[[ -n "${KUBE_CONTEXT:-}" ]] && kubectl config use-context "$KUBE_CONTEXT"
k() { kubectl -n "$NS" "$@"; }
seconds() { local v="${1%s}"; echo "${v%%[!0-9]*}"; }

wait_job() { # name, timeout: Complete -> 0; Failed or timeout -> its last log lines, 1 (fails fast)
  local name="$1" deadline=$((SECONDS + $(seconds "$2"))) state
  while ((SECONDS < deadline)); do
    state="$(k get job "$name" -o jsonpath='{.status.conditions[?(@.status=="True")].type}' 2>/dev/null || true)"
    case "$state" in
      *Complete*) say "job $name complete"; return 0 ;;
      *Failed*) break ;;
    esac
    sleep 5
  done
  say "job $name did not complete (${state:-still running after $2}); its last log lines:"
  k logs "job/$name" --tail=30 || true
  return 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$ROOT/deploy/k8s" "$work/all"
sed -i -e "s#^\([[:space:]]*newName:\).*#\1 $IMAGE#" -e "s#^\([[:space:]]*newTag:\).*#\1 \"$TAG\"#" "$work/all/kustomization.yaml"
grep -q "newName: $IMAGE" "$work/all/kustomization.yaml" || { say "could not set the image in kustomization.yaml"; exit 1; }
cp -r "$work/all" "$work/jobs"
sed -i -e '/^[[:space:]]*-[[:space:]]*scorer\.yaml/d' -e '/^[[:space:]]*-[[:space:]]*api\.yaml/d' "$work/jobs/kustomization.yaml"

previous=""
if k get deployment cockpit-api >/dev/null 2>&1; then
  previous="$(k get deployment cockpit-api -o jsonpath='{.spec.template.spec.containers[0].image}')"
fi
say "deploying $IMAGE:$TAG to namespace $NS (running now: ${previous:-nothing})"

say "migrations and model Jobs"
k delete job cockpit-migrate cockpit-models --ignore-not-found
kubectl apply -k "$work/jobs"
# A failure here changes no running pod: the previous release keeps serving (migrations must stay
# compatible with it, as they must for `rollout undo`).
wait_job cockpit-migrate "$ROLLOUT_TIMEOUT" || { say "FAILED: migrations; deployments untouched"; exit 1; }
wait_job cockpit-models "$JOB_TIMEOUT" || { say "FAILED: no production model; deployments untouched"; exit 1; }

rollback() {
  say "FAILED: $1; pods and the API's last log lines:"
  k get pods -o wide || true
  k logs deployment/cockpit-api -c api --tail=20 || true
  if [[ -z "$previous" ]]; then
    say "first deployment: nothing to roll back to; the failing pods stay for inspection"
    exit 1
  fi
  for d in "${DEPLOYMENTS[@]}"; do k rollout undo "deployment/$d" || true; done
  for d in "${DEPLOYMENTS[@]}"; do k rollout status "deployment/$d" --timeout="$ROLLOUT_TIMEOUT" || true; done
  say "rolled back to $previous; the pipeline fails so the release is looked at"
  exit 1
}

say "deployments"
kubectl apply -k "$work/all" || rollback "kubectl apply"
for d in "${DEPLOYMENTS[@]}"; do
  k rollout status "deployment/$d" --timeout="$ROLLOUT_TIMEOUT" || rollback "rollout of $d not finished within $ROLLOUT_TIMEOUT"
done

say "smoke test through the Service (one event in, one score out)"
k exec deployment/cockpit-api -c api -- env COCKPIT_API_URL="http://cockpit-api.$NS.svc" \
  python -m api smoke --timeout "$SMOKE_TIMEOUT" || rollback "smoke test"
say "deployed $IMAGE:$TAG"
