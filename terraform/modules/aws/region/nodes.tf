# The nodes: one launch template per region (IMDSv2 only, encrypted root volume, detailed monitoring, the
# instance role), one instance per node at the address the configuration module gave it, and one encrypted data
# volume per node. Instances rather than an autoscaling group: a node's identity (its certificate, its place in
# the voter list, its actors' data) is its own, so a replacement must come back as the same node on the same
# volume, which an autoscaling group cannot promise.

data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == null ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

locals {
  ami_id = var.ami_id == null ? data.aws_ssm_parameter.al2023[0].insecure_value : var.ami_id
}

resource "aws_launch_template" "node" {
  name_prefix            = "${local.name}-node-"
  description            = "Tern node in ${var.region}"
  image_id               = local.ami_id
  instance_type          = var.layout.instance_type
  ebs_optimized          = true
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.node.id]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_type           = "gp3"
      volume_size           = 20
      encrypted             = true
      kms_key_id            = aws_kms_key.this.arn
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Cluster = var.cluster_name, Region = var.region }
  }
}

resource "aws_instance" "node" {
  # checkov:skip=CKV_AWS_79:IMDSv2 is required by the launch template (aws_launch_template.node, metadata_options); checkov does not follow launch templates.
  # checkov:skip=CKV_AWS_8:The root volume is encrypted with the region's key by the launch template, and the data volume (aws_ebs_volume.data) too; checkov does not follow launch templates.
  # checkov:skip=CKV_AWS_126:Detailed monitoring is enabled by the launch template; checkov does not follow launch templates.
  # checkov:skip=CKV_AWS_135:EBS optimization is enabled by the launch template; checkov does not follow launch templates.
  for_each = local.nodes

  subnet_id                   = aws_subnet.node[each.value.zone].id
  private_ip                  = each.value.ip
  associate_public_ip_address = false
  iam_instance_profile        = aws_iam_instance_profile.node[each.key].name
  user_data_base64            = base64gzip(var.user_data[each.key])
  user_data_replace_on_change = false

  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }

  tags = { Name = "${var.cluster_name}-${each.key}", Node = each.key }

  lifecycle {
    # A new release or launch template changes the user-data of nodes created from now on; running nodes are
    # upgraded one at a time (README.md, "Rolling upgrades"), never all at once by an apply.
    ignore_changes = [user_data_base64, launch_template]
  }
}

resource "aws_ebs_volume" "data" {
  for_each = local.nodes

  availability_zone = each.value.zone
  size              = each.value.data_volume_gb
  type              = "gp3"
  encrypted         = true
  kms_key_id        = aws_kms_key.this.arn
  tags              = { Name = "${var.cluster_name}-${each.key}-data", Node = each.key }
}

# Survives the instance: a replaced node finds its actors' data again (tern-install mounts it, formatting it only
# when it has no filesystem).
resource "aws_volume_attachment" "data" {
  for_each = local.nodes

  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data[each.key].id
  instance_id = aws_instance.node[each.key].id
}

# A role per node: each node reads its own key and nothing of the other nodes'.
data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  for_each = local.nodes

  name_prefix        = "${var.cluster_name}-${each.key}-"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

# Session Manager in place of SSH.
resource "aws_iam_role_policy_attachment" "ssm_core" {
  for_each = local.nodes

  role       = aws_iam_role.node[each.key].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

# The cluster's CA and admin token and the node's own certificate and key, read at boot by tern-install.
data "aws_iam_policy_document" "secrets" {
  for_each = var.ssm_prefix == null ? {} : local.nodes

  statement {
    actions = ["ssm:GetParameter"]
    resources = [for name in ["ca.pem", "admin-token", "nodes/${each.key}.pem", "nodes/${each.key}.key"] :
      "arn:${data.aws_partition.current.partition}:ssm:${var.layout.cloud_region}:${data.aws_caller_identity.current.account_id}:parameter${var.ssm_prefix}/${name}"
    ]
  }
}

resource "aws_iam_role_policy" "secrets" {
  for_each = data.aws_iam_policy_document.secrets

  role   = aws_iam_role.node[each.key].id
  policy = each.value.json
}

resource "aws_iam_instance_profile" "node" {
  for_each = local.nodes

  name_prefix = "${var.cluster_name}-${each.key}-"
  role        = aws_iam_role.node[each.key].name
}
