#!/usr/bin/env bash
# Tears the AWS infrastructure down in the reverse order of create.sh: the nodes (and their Consul ACL tokens)
# first, then the Consul cluster and the VPC. The Consul data volumes are destroyed with the cluster.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

destroy() {
  echo "cleanup: terraform destroy in terraform/$1" >&2
  terraform -chdir="$root/terraform/$1" init -input=false
  terraform -chdir="$root/terraform/$1" destroy -input=false "${@:2}"
}

destroy nodes "$@"
destroy consul "$@"
