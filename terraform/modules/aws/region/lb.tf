# The region's gateway: an application load balancer serving HTTPS (and WebSockets) on 443 in the public
# subnets, forwarding to every node's gateway, health-checked on /health; access logs to a bucket of its own.

resource "aws_lb" "gateway" {
  # checkov:skip=CKV2_AWS_28:No WAF by default: generic managed rule sets misjudge actor traffic (AWSManagedRulesCommonRuleSet blocks request bodies over 8 KB, the gateway accepts 64 KB, and WebSocket frames pass uninspected). The gateway validates its own input limits (README.md, "Input limits"); attach a web ACL tuned to your actors with aws_wafv2_web_acl_association if you need one.
  name                       = substr("${local.name}-gw", 0, 32)
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = [for zone in var.layout.zones : aws_subnet.public[zone].id]
  security_groups            = [aws_security_group.lb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 300 # WebSocket connections idle between messages

  access_logs {
    bucket  = aws_s3_bucket.access_logs.id
    prefix  = "gateway"
    enabled = true
  }

  depends_on = [aws_s3_bucket_policy.access_logs]
}

resource "aws_lb_target_group" "gateway" {
  name_prefix          = substr(var.region, 0, 6)
  port                 = var.ports.gateway
  protocol             = "HTTP"
  vpc_id               = aws_vpc.this.id
  target_type          = "instance"
  deregistration_delay = 60

  health_check {
    path                = "/health"
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_target_group_attachment" "node" {
  for_each = local.nodes

  target_group_arn = aws_lb_target_group.gateway.arn
  target_id        = aws_instance.node[each.key].id
  port             = var.ports.gateway
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.gateway.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.gateway.arn
  }
}

# Access logs. Load balancers write only to buckets encrypted with S3-managed keys.
data "aws_elb_service_account" "this" {}

resource "aws_s3_bucket" "access_logs" {
  # checkov:skip=CKV_AWS_145:Load balancers deliver access logs only to buckets encrypted with S3-managed keys (SSE-S3), not KMS.
  # checkov:skip=CKV_AWS_18:This bucket is the access-log sink itself; logging its own access would need yet another bucket, and so on.
  # checkov:skip=CKV_AWS_144:Access logs are diagnostics that expire after access_log_days; replicating them to another region doubles their cost and recovers nothing the cluster needs.
  # checkov:skip=CKV2_AWS_62:Nothing consumes events of new log objects; they are read on demand (Athena, downloads).
  bucket_prefix = "${local.name}-gw-logs-"
  force_destroy = false
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "LoadBalancerWrites"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/gateway/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.this.arn]
    }
  }
  statement {
    sid       = "TLSOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
