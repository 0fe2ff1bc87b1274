# One ACL policy and one token per node, rendered from deploy/acl/executor.hcl (the policy docs/operations.md
# shows and the tests run): read task specs, write run state, control requests and this node's own registration
# only. A node's token cannot change what the fleet runs, nor register as another node. The hashicorp/consul
# provider needs Consul to be up and reachable: this is why terraform/nodes is applied after terraform/consul
# (see docs/operations.md, "Terraform on AWS").

locals {
  node_names = [for i in range(var.node_count) : "${var.name}-${i}"]
}

resource "consul_acl_policy" "executor" {
  count       = var.node_count
  name        = "${local.node_names[count.index]}-dtask-executor"
  description = "dtask executor on ${local.node_names[count.index]}: reads task specs, records runs, registers only itself."
  rules = replace(
    templatefile("${path.module}/../../../deploy/acl/executor.hcl", { node = local.node_names[count.index] }),
    "\"dtask/", "\"${var.kv_prefix}",
  )
}

resource "consul_acl_token" "executor" {
  count       = var.node_count
  description = "dtask executor on ${local.node_names[count.index]}"
  policies    = [consul_acl_policy.executor[count.index].name]
}

data "consul_acl_token_secret_id" "executor" {
  count       = var.node_count
  accessor_id = consul_acl_token.executor[count.index].id
}
