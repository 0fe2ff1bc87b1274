# One ACL policy and one token per node, rendered from deploy/acl/executor.hcl (the policy docs/operations.md
# shows and the tests run): read task specs, write run state, control requests and this node's own registration
# only. A node's token cannot change what the fleet runs, nor register as another node.
#
# Nodes reach Consul through the servers' load balancer, not a local agent, so each executor creates its sessions
# on a catalog node of its own (consul_node below, named like the node, no agent and no checks: Consul never reaps
# it) with --session-node, and its policy grants session write on that node only: it cannot renew or destroy
# another node's sessions.
#
# With labels_from_consul, each node's labels are written here to <kv_prefix>node-labels/<node>, a key the node's
# token can only read (executor --labels-from-consul). The hashicorp/consul
# provider needs Consul to be up and reachable: this is why terraform/nodes is applied after terraform/consul
# (see docs/operations.md, "Terraform on AWS").

locals {
  node_names = [for i in range(var.node_count) : "${var.name}-${i}"]
  # Each node's labels: node_labels, overridden per node by node_labels_by_node, as k=v,k2=v2.
  node_label_values = [for n in local.node_names : join(",", [
    for k, v in merge(var.node_labels, lookup(var.node_labels_by_node, n, {})) : "${k}=${v}"
  ])]
}

resource "consul_acl_policy" "executor" {
  count       = var.node_count
  name        = "${local.node_names[count.index]}-dtask-executor"
  description = "dtask executor on ${local.node_names[count.index]}: reads task specs, records runs, registers only itself."
  rules = replace(
    templatefile("${path.module}/../../../deploy/acl/executor.hcl", {
      node        = local.node_names[count.index]
      consul_node = local.node_names[count.index]
    }),
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

# The catalog node each executor's sessions are created on (--session-node).
resource "consul_node" "executor" {
  count   = var.node_count
  name    = local.node_names[count.index]
  address = aws_instance.node[count.index].private_ip
}

# The labels of each node, owned by whoever runs this module (executor --labels-from-consul).
resource "consul_keys" "node_labels" {
  count = var.labels_from_consul ? var.node_count : 0

  key {
    path   = "${var.kv_prefix}node-labels/${local.node_names[count.index]}"
    value  = local.node_label_values[count.index]
    delete = true
  }
}
