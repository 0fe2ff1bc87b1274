# N Flatcar nodes, each running dtask-executor.service, configured by deploy/butane/executor.bu (rendered by
# templatefile() and transpiled to Ignition by the poseidon/ct provider's ct_config data source).

data "aws_ami" "flatcar" {
  most_recent = true
  owners      = ["075585003325"] # Flatcar's publisher account

  filter {
    name   = "name"
    values = ["Flatcar-stable-*"]
  }

  filter {
    name   = "architecture"
    values = [var.architecture]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  labels_arg = join(",", [for k in sort(keys(var.node_labels)) : "${k}=${var.node_labels[k]}"])
  # Labels from the admin-owned key (acl.tf writes it), or declared by the node itself.
  labels_args   = var.labels_from_consul ? " --labels-from-consul" : (local.labels_arg == "" ? "" : " --labels ${local.labels_arg}")
  executor_args = trimspace("--prefix ${var.kv_prefix}${local.labels_args}")
  credentials   = "/run/credentials/dtask-executor.service"
  notification_env = join("\n", concat(
    var.slack_webhook == "" ? [] : ["SLACK_WEBHOOK_FILE=${local.credentials}/slack-webhook"],
    var.datadog_api_key == "" ? [] : ["DD_API_KEY_FILE=${local.credentials}/datadog-api-key"],
  ))
}

data "ct_config" "node" {
  count = var.node_count
  content = templatefile("${path.module}/../../../deploy/butane/executor.bu", {
    dtask_binary_url    = var.dtask_binary_url
    dtask_binary_sha512 = var.dtask_binary_sha512
    consul_http_addr    = "https://${var.consul_https_address}"
    consul_ca_pem       = var.consul_ca_cert_pem
    consul_token        = data.consul_acl_token_secret_id.executor[count.index].secret_id
    slack_webhook       = var.slack_webhook
    datadog_api_key     = var.datadog_api_key
    executor_args       = "--node ${local.node_names[count.index]} --session-node ${local.node_names[count.index]} ${local.executor_args}"
    notification_env    = local.notification_env
  })
  strict = true
}

resource "aws_security_group" "node" {
  name        = "${var.name}-nodes"
  description = "dtask executor nodes: outbound only (Consul, notifications, tasks)."
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-nodes" })
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.node.id
  description       = "Outbound: Consul, Slack, DataDog and whatever the tasks reach"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each          = toset(var.admin_cidr_blocks)
  security_group_id = aws_security_group.node.id
  description       = "SSH from an admin network"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_instance" "node" {
  count                  = var.node_count
  ami                    = data.aws_ami.flatcar.id
  instance_type          = var.instance_type
  subnet_id              = var.private_subnet_ids[count.index % length(var.private_subnet_ids)]
  vpc_security_group_ids = [aws_security_group.node.id]
  key_name               = var.key_name
  user_data              = data.ct_config.node[count.index].rendered

  # The Ignition config (with this node's token and the notification secrets) is instance user data:
  # IMDSv2 only, and not from containers one hop away.
  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    encrypted   = true
  }

  tags = merge(var.tags, { Name = "${var.name}-${count.index}" })
}
