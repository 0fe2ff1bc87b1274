# Three Consul servers across availability zones, on Flatcar, each with its own persistent EBS data volume,
# with ACLs (default deny), TLS and gossip encryption, behind an internal network load balancer on 8501.

data "aws_ami" "flatcar" {
  most_recent = true
  owners      = ["075585003325"] # Flatcar's publisher account

  filter {
    name   = "name"
    values = ["Flatcar-stable-*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

data "aws_subnet" "private" {
  count = var.server_count
  id    = var.private_subnet_ids[count.index % length(var.private_subnet_ids)]
}

# Cloud auto-join: servers find each other by tag, which needs ec2:DescribeInstances.
data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "auto_join" {
  statement {
    actions   = ["ec2:DescribeInstances"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "consul" {
  name               = "${var.name}-consul"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "auto_join" {
  name   = "cloud-auto-join"
  role   = aws_iam_role.consul.id
  policy = data.aws_iam_policy_document.auto_join.json
}

resource "aws_iam_instance_profile" "consul" {
  name = "${var.name}-consul"
  role = aws_iam_role.consul.name
}

resource "aws_ebs_volume" "data" {
  count             = var.server_count
  availability_zone = data.aws_subnet.private[count.index].availability_zone
  size              = var.data_volume_size
  type              = "gp3"
  encrypted         = true
  tags              = merge(var.tags, { Name = "${var.name}-consul-${count.index}-data" })
}

locals {
  auto_join_tag = "${var.name}-consul"

  server_hcl = [for i in range(var.server_count) : <<-HCL
    datacenter       = "${var.datacenter}"
    node_name        = "${var.name}-consul-${i}"
    server           = true
    bootstrap_expect = ${var.server_count}
    data_dir         = "/consul/data"
    bind_addr        = "{{ GetPrivateInterfaces | include \"network\" \"${data.aws_subnet.private[i].cidr_block}\" | attr \"address\" }}"
    client_addr      = "0.0.0.0"
    retry_join       = ["provider=aws tag_key=consul-auto-join tag_value=${local.auto_join_tag}"]
    encrypt          = "${random_id.gossip_key.b64_std}"
    ui_config {
      enabled = true
    }

    # Plain HTTP on loopback only; everyone else uses HTTPS on 8501.
    addresses {
      http = "127.0.0.1"
    }
    ports {
      http  = 8500
      https = 8501
    }

    tls {
      defaults {
        ca_file         = "/consul/config/tls/ca.pem"
        cert_file       = "/consul/config/tls/server.pem"
        key_file        = "/consul/config/tls/server-key.pem"
        verify_outgoing = true
        # API clients authenticate with ACL tokens; set true to also require client certificates.
        verify_incoming = false
      }
      internal_rpc {
        verify_incoming        = true
        verify_server_hostname = true
      }
    }

    acl {
      enabled                  = true
      default_policy           = "deny"
      enable_token_persistence = true
      tokens {
        initial_management = "${random_uuid.bootstrap_token.result}"
      }
    }
  HCL
  ]
}

data "ct_config" "server" {
  count = var.server_count
  content = templatefile("${path.module}/templates/consul-server.bu", {
    data_device  = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${replace(aws_ebs_volume.data[count.index].id, "-", "")}"
    server_hcl   = local.server_hcl[count.index]
    ca_pem       = tls_self_signed_cert.ca.cert_pem
    cert_pem     = tls_locally_signed_cert.server[count.index].cert_pem
    key_pem      = tls_private_key.server[count.index].private_key_pem
    consul_image = var.consul_image
  })
  strict = true
}

resource "aws_instance" "server" {
  count                  = var.server_count
  ami                    = data.aws_ami.flatcar.id
  instance_type          = var.instance_type
  subnet_id              = data.aws_subnet.private[count.index].id
  vpc_security_group_ids = [aws_security_group.consul.id]
  iam_instance_profile   = aws_iam_instance_profile.consul.name
  key_name               = var.key_name
  user_data              = data.ct_config.server[count.index].rendered

  metadata_options {
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    encrypted   = true
  }

  tags = merge(var.tags, {
    Name               = "${var.name}-consul-${count.index}"
    "consul-auto-join" = local.auto_join_tag
  })
}

resource "aws_volume_attachment" "data" {
  count       = var.server_count
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data[count.index].id
  instance_id = aws_instance.server[count.index].id
}
