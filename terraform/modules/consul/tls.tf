# A private CA for the cluster, one certificate per server. The server certificates also name the internal
# load balancer and localhost, so clients verify the host name whichever way they come in.

resource "tls_private_key" "ca" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "ca" {
  private_key_pem       = tls_private_key.ca.private_key_pem
  is_ca_certificate     = true
  validity_period_hours = 87600
  allowed_uses          = ["cert_signing", "crl_signing", "digital_signature"]

  subject {
    common_name  = "${var.name} Consul CA"
    organization = var.name
  }
}

resource "tls_private_key" "server" {
  count       = var.server_count
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_cert_request" "server" {
  count           = var.server_count
  private_key_pem = tls_private_key.server[count.index].private_key_pem

  subject {
    common_name = "server.${var.datacenter}.consul"
  }

  dns_names = [
    "server.${var.datacenter}.consul",
    "localhost",
    aws_lb.consul.dns_name,
  ]
  ip_addresses = ["127.0.0.1"]
}

resource "tls_locally_signed_cert" "server" {
  count                 = var.server_count
  cert_request_pem      = tls_cert_request.server[count.index].cert_request_pem
  ca_private_key_pem    = tls_private_key.ca.private_key_pem
  ca_cert_pem           = tls_self_signed_cert.ca.cert_pem
  validity_period_hours = 8760
  allowed_uses          = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]
}
