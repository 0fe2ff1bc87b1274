# Phase 1: the network and the Consul cluster. Apply this first (scripts/create.sh does).

module "global" {
  source = "../modules/global_variables"
}

provider "aws" {
  region = module.global.region

  default_tags {
    tags = {
      Project = module.global.project
    }
  }
}

module "vpc" {
  source             = "../modules/vpc"
  name               = module.global.project
  cidr_block         = module.global.vpc_cidr
  az_count           = 3
  single_nat_gateway = var.single_nat_gateway
}

module "consul" {
  source             = "../modules/consul"
  name               = module.global.project
  vpc_id             = module.vpc.vpc_id
  vpc_cidr           = module.vpc.vpc_cidr
  private_subnet_ids = module.vpc.private_subnet_ids
  server_count       = var.consul_server_count
  instance_type      = var.consul_instance_type
  datacenter         = module.global.consul_datacenter
  data_volume_size   = var.consul_data_volume_size
  key_name           = var.key_name
  admin_cidr_blocks  = var.admin_cidr_blocks
}
