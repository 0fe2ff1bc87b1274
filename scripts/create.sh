#!/usr/bin/env bash
# Brings up the AWS infrastructure in two phases:
#   1. terraform/consul: the VPC and the Consul cluster (ACLs, TLS, gossip encryption, persistent disks);
#   2. terraform/nodes:  the executor nodes and their Consul ACL tokens.
# Phase 2 talks to Consul's API through the hashicorp/consul provider, so Consul must be up and reachable from
# here: run this from inside the VPC (or set TF_VAR_consul_api_address to a tunnel, see docs/operations.md).
# Settings: terraform/nodes/terraform.tfvars (copy terraform.tfvars.example); secrets as TF_VAR_* variables.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

apply() {
  echo "create: terraform apply in terraform/$1" >&2
  terraform -chdir="$root/terraform/$1" init -input=false
  terraform -chdir="$root/terraform/$1" apply -input=false "${@:2}"
}

apply consul "$@"

# Wait until the cluster has a leader before phase 2 uses its API.
if [[ -z "${TF_VAR_consul_api_address:-}" ]]; then
  address="$(terraform -chdir="$root/terraform/consul" output -raw consul_https_address)"
else
  address="$TF_VAR_consul_api_address"
fi
ca="$(mktemp)"
trap 'rm -f "$ca"' EXIT
terraform -chdir="$root/terraform/consul" output -raw consul_ca_cert_pem > "$ca"
echo "create: waiting for a Consul leader at https://$address" >&2
for _ in $(seq 1 60); do
  if leader="$(curl -fsS --max-time 5 --cacert "$ca" "https://$address/v1/status/leader" 2>/dev/null)" \
    && [[ "$leader" != '""' && -n "$leader" ]]; then
    echo "create: Consul leader $leader" >&2
    break
  fi
  sleep 10
done

apply nodes "$@"
