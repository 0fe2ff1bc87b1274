# One ACL token per node, all with the executor policy of docs/operations.md: write under the dtask prefix
# and create sessions. The hashicorp/consul provider needs Consul to be up and reachable: this is why
# terraform/nodes is applied after terraform/consul (see docs/operations.md, "Terraform on AWS").

resource "consul_acl_policy" "executor" {
  name        = "${var.name}-dtask-executor"
  description = "dtask executor: claims slots, records runs, registers its node."
  rules       = <<-HCL
    key_prefix "${var.kv_prefix}" {
      policy = "write"
    }
    session_prefix "" {
      policy = "write"
    }
  HCL
}

resource "consul_acl_token" "executor" {
  count       = var.node_count
  description = "dtask executor on ${var.name}-${count.index}"
  policies    = [consul_acl_policy.executor.name]
}

data "consul_acl_token_secret_id" "executor" {
  count       = var.node_count
  accessor_id = consul_acl_token.executor[count.index].id
}
