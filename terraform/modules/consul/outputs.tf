output "https_address" {
  description = "Consul's HTTPS API behind the internal load balancer, as host:port."
  value       = "${aws_lb.consul.dns_name}:8501"
}

output "ca_cert_pem" {
  description = "PEM of the CA that signed the servers' certificates (CONSUL_CACERT)."
  value       = tls_self_signed_cert.ca.cert_pem
}

output "bootstrap_token" {
  description = "The initial management ACL token (also in SSM at bootstrap_token_parameter)."
  value       = random_uuid.bootstrap_token.result
  sensitive   = true
}

output "bootstrap_token_parameter" {
  description = "SSM parameter holding the initial management ACL token."
  value       = aws_ssm_parameter.bootstrap_token.name
}

output "security_group_id" {
  description = "Security group of the Consul servers."
  value       = aws_security_group.consul.id
}

output "server_private_ips" {
  description = "Private IP addresses of the servers."
  value       = aws_instance.server[*].private_ip
}

output "datacenter" {
  description = "Consul datacenter name."
  value       = var.datacenter
}
