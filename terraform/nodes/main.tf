# Phase 2: the executor nodes and their Consul ACL tokens. Needs terraform/consul applied and Consul's API
# reachable from where Terraform runs (see docs/operations.md, "Terraform on AWS").

module "global" {
  source = "../modules/global_variables"
}

data "terraform_remote_state" "consul" {
  backend = "local"
  config = {
    path = "${path.module}/../consul/terraform.tfstate"
  }
}

locals {
  consul = data.terraform_remote_state.consul.outputs
}

provider "aws" {
  region = module.global.region

  default_tags {
    tags = {
      Project = module.global.project
    }
  }
}

# Manages the executor policies, tokens, session nodes and node labels with the initial management token.
provider "consul" {
  address    = var.consul_api_address != "" ? var.consul_api_address : local.consul.consul_https_address
  scheme     = "https"
  datacenter = module.global.consul_datacenter
  token      = local.consul.consul_bootstrap_token
  ca_pem     = local.consul.consul_ca_cert_pem
}

module "nodes" {
  source               = "../modules/nodes"
  name                 = var.server_name
  node_count           = var.node_count
  instance_type        = var.instance_type
  architecture         = var.architecture
  vpc_id               = local.consul.vpc_id
  private_subnet_ids   = local.consul.private_subnet_ids
  consul_https_address = local.consul.consul_https_address
  consul_ca_cert_pem   = local.consul.consul_ca_cert_pem
  kv_prefix            = module.global.kv_prefix
  dtask_binary_url     = var.dtask_binary_url
  dtask_binary_sha512  = var.dtask_binary_sha512
  node_labels          = var.node_labels
  node_labels_by_node  = var.node_labels_by_node
  labels_from_consul   = var.labels_from_consul
  slack_webhook        = var.slack_webhook
  datadog_api_key      = var.datadog_api_key
  key_name             = var.key_name
  admin_cidr_blocks    = var.admin_cidr_blocks
}
