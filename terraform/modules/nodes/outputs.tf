output "node_names" {
  description = "Names of the nodes (their EC2 Name tags)."
  value       = [for i in aws_instance.node : i.tags["Name"]]
}

output "private_ips" {
  description = "Private IP addresses of the nodes."
  value       = aws_instance.node[*].private_ip
}

output "executor_policy_names" {
  description = "The Consul ACL policy of each node's executor token (one per node, from deploy/acl/executor.hcl)."
  value       = consul_acl_policy.executor[*].name
}

output "security_group_id" {
  description = "Security group of the nodes."
  value       = aws_security_group.node.id
}
