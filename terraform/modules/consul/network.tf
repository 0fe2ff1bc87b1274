# Consul's HTTPS API (8501) is reachable from the VPC only, through an internal network load balancer;
# the plain HTTP port (8500) listens on the servers' loopback only. Nothing is open to 0.0.0.0/0.

resource "aws_security_group" "consul" {
  name        = "${var.name}-consul"
  description = "Consul servers: RPC and gossip among themselves, HTTPS API from the VPC."
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-consul" })
}

resource "aws_vpc_security_group_ingress_rule" "https_api" {
  security_group_id = aws_security_group.consul.id
  description       = "Consul HTTPS API from the VPC (clients and load balancer health checks)"
  ip_protocol       = "tcp"
  from_port         = 8501
  to_port           = 8501
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_ingress_rule" "server_rpc" {
  security_group_id            = aws_security_group.consul.id
  description                  = "Consul server RPC"
  ip_protocol                  = "tcp"
  from_port                    = 8300
  to_port                      = 8300
  referenced_security_group_id = aws_security_group.consul.id
}

resource "aws_vpc_security_group_ingress_rule" "serf_tcp" {
  security_group_id            = aws_security_group.consul.id
  description                  = "Consul gossip (LAN and WAN), TCP"
  ip_protocol                  = "tcp"
  from_port                    = 8301
  to_port                      = 8302
  referenced_security_group_id = aws_security_group.consul.id
}

resource "aws_vpc_security_group_ingress_rule" "serf_udp" {
  security_group_id            = aws_security_group.consul.id
  description                  = "Consul gossip (LAN and WAN), UDP"
  ip_protocol                  = "udp"
  from_port                    = 8301
  to_port                      = 8302
  referenced_security_group_id = aws_security_group.consul.id
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each          = toset(var.admin_cidr_blocks)
  security_group_id = aws_security_group.consul.id
  description       = "SSH from an admin network"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.consul.id
  description       = "Outbound (image pulls through NAT, AWS APIs for cloud auto-join)"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_lb" "consul" {
  name                             = "${var.name}-consul"
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = var.private_subnet_ids
  enable_cross_zone_load_balancing = true
  tags                             = var.tags
}

resource "aws_lb_target_group" "https_api" {
  name                 = "${var.name}-consul-https"
  port                 = 8501
  protocol             = "TCP"
  vpc_id               = var.vpc_id
  target_type          = "instance"
  deregistration_delay = 30

  # /v1/status/leader needs no ACL token and fails on a server that has no leader.
  health_check {
    protocol            = "HTTPS"
    path                = "/v1/status/leader"
    port                = "8501"
    healthy_threshold   = 2
    unhealthy_threshold = 2
    interval            = 10
  }

  tags = var.tags
}

resource "aws_lb_listener" "https_api" {
  load_balancer_arn = aws_lb.consul.arn
  port              = 8501
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.https_api.arn
  }
}

resource "aws_lb_target_group_attachment" "https_api" {
  count            = var.server_count
  target_group_arn = aws_lb_target_group.https_api.arn
  target_id        = aws_instance.server[count.index].id
  port             = 8501
}
