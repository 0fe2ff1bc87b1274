# The gossip encryption key and the initial management (bootstrap) ACL token. Both are kept in SSM Parameter
# Store as SecureStrings for operators; they are also in the Terraform state, so keep the state private.

resource "random_id" "gossip_key" {
  byte_length = 32
}

# Consul ACL tokens are UUIDs.
resource "random_uuid" "bootstrap_token" {}

resource "aws_ssm_parameter" "bootstrap_token" {
  name        = "/${var.name}/consul/bootstrap-token"
  description = "Consul initial management ACL token of ${var.name}."
  type        = "SecureString"
  value       = random_uuid.bootstrap_token.result
  tags        = var.tags
}

resource "aws_ssm_parameter" "gossip_key" {
  name        = "/${var.name}/consul/gossip-key"
  description = "Consul gossip encryption key of ${var.name}."
  type        = "SecureString"
  value       = random_id.gossip_key.b64_std
  tags        = var.tags
}

resource "aws_ssm_parameter" "ca_cert" {
  name        = "/${var.name}/consul/ca-cert"
  description = "PEM of the CA that signed the Consul servers' certificates."
  type        = "String"
  value       = tls_self_signed_cert.ca.cert_pem
  tags        = var.tags
}
