output "node_names" {
  description = "Names of the executor nodes."
  value       = module.nodes.node_names
}

output "node_private_ips" {
  description = "Private IP addresses of the executor nodes."
  value       = module.nodes.private_ips
}

output "consul_https_address" {
  description = "Consul's HTTPS API the executors use."
  value       = local.consul.consul_https_address
}
