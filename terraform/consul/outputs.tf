# Read by terraform/nodes through its terraform_remote_state data source.

output "region" {
  description = "AWS region."
  value       = module.global.region
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.vpc.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets, one per availability zone."
  value       = module.vpc.private_subnet_ids
}

output "consul_https_address" {
  description = "Consul's HTTPS API (internal load balancer), host:port."
  value       = module.consul.https_address
}

output "consul_ca_cert_pem" {
  description = "PEM of the Consul CA."
  value       = module.consul.ca_cert_pem
}

output "consul_bootstrap_token" {
  description = "Consul's initial management ACL token."
  value       = module.consul.bootstrap_token
  sensitive   = true
}

output "consul_bootstrap_token_parameter" {
  description = "SSM parameter holding the initial management ACL token."
  value       = module.consul.bootstrap_token_parameter
}

output "consul_security_group_id" {
  description = "Security group of the Consul servers."
  value       = module.consul.security_group_id
}
