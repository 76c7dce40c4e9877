# One customer-managed key per region: the nodes' volumes and the flow logs.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_109:A key policy's "*" resource is the key itself; the account administers its own key through IAM.
  # checkov:skip=CKV_AWS_111:A key policy's "*" resource is the key itself; CloudWatch Logs is held to this region's log groups of the cluster.
  # checkov:skip=CKV_AWS_356:A key policy's "*" resource is the key itself, not every resource.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.layout.cloud_region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.layout.cloud_region}:${data.aws_caller_identity.current.account_id}:log-group:/${var.cluster_name}/${var.region}/*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${local.name}: node volumes and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}
