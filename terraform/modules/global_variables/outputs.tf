# Settings shared by the terraform/consul and terraform/nodes configurations.
# Change the region here; the AMIs are looked up in it (Flatcar stable), so nothing else has to follow.

output "region" {
  description = "AWS region everything is created in."
  value       = "us-east-2"
}

output "project" {
  description = "Name prefix and tag of every resource."
  value       = "dtask"
}

output "vpc_cidr" {
  description = "CIDR block of the VPC. Consul's API is open to this block only."
  value       = "10.20.0.0/16"
}

output "consul_datacenter" {
  description = "Consul datacenter name."
  value       = "dc1"
}

output "kv_prefix" {
  description = "Consul KV prefix shared by the dtask operator and executors."
  value       = "dtask/"
}
