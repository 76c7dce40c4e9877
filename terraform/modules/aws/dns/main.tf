# Route 53 records from the configuration module's dns_records: the public gateway name routed to the region of
# lowest latency (an alias to each region's load balancer, which answers only while a target is healthy), a name
# per region, and a private zone, shared by every region's VPC, holding an A record per node and the SRV record
# of the seeds (for `seed_discovery = "dns"`).

terraform {
  required_version = ">= 1.9"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60"
    }
  }
}

variable "records" {
  description = "The configuration module's dns_records."
  type = object({
    public_name   = string
    internal_zone = string
    latency = list(object({
      name           = string
      set_identifier = string
      region         = string
      cloud_region   = string
    }))
    regional = map(string)
    nodes    = map(string)
    seed_srv = object({
      name    = string
      records = list(string)
    })
  })
}

variable "public_zone_id" {
  description = "The public hosted zone that holds the gateway names (the zone of public_name)."
  type        = string
}

variable "load_balancers" {
  description = "Each region's load balancer (the region module's load_balancer), by Tern region."
  type = map(object({
    dns_name = string
    zone_id  = string
  }))
}

variable "vpcs" {
  description = "Each region's VPC id and cloud region, associated with the private zone."
  type = map(object({
    vpc_id       = string
    cloud_region = string
  }))
}

variable "ttl" {
  description = "TTL of the private records, in seconds."
  type        = number
  default     = 60
}

resource "aws_route53_record" "latency" {
  # checkov:skip=CKV2_AWS_23:The record points at a load balancer or an instance that the region modules make and pass in as variables; checkov looks at this module alone.
  for_each = { for record in var.records.latency : record.set_identifier => record }

  zone_id        = var.public_zone_id
  name           = each.value.name
  type           = "A"
  set_identifier = each.value.set_identifier

  latency_routing_policy {
    region = each.value.cloud_region
  }

  alias {
    name                   = var.load_balancers[each.value.region].dns_name
    zone_id                = var.load_balancers[each.value.region].zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "regional" {
  # checkov:skip=CKV2_AWS_23:The record points at a load balancer or an instance that the region modules make and pass in as variables; checkov looks at this module alone.
  for_each = var.records.regional

  zone_id = var.public_zone_id
  name    = each.value
  type    = "A"

  alias {
    name                   = var.load_balancers[each.key].dns_name
    zone_id                = var.load_balancers[each.key].zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_zone" "internal" {
  name    = var.records.internal_zone
  comment = "Tern nodes and seeds"

  dynamic "vpc" {
    for_each = var.vpcs
    content {
      vpc_id     = vpc.value.vpc_id
      vpc_region = vpc.value.cloud_region
    }
  }
}

resource "aws_route53_record" "node" {
  # checkov:skip=CKV2_AWS_23:The record points at a load balancer or an instance that the region modules make and pass in as variables; checkov looks at this module alone.
  for_each = var.records.nodes

  zone_id = aws_route53_zone.internal.zone_id
  name    = each.key
  type    = "A"
  ttl     = var.ttl
  records = [each.value]
}

resource "aws_route53_record" "seeds" {
  zone_id = aws_route53_zone.internal.zone_id
  name    = var.records.seed_srv.name
  type    = "SRV"
  ttl     = var.ttl
  records = var.records.seed_srv.records
}

output "internal_zone_id" {
  description = "The private zone of the nodes and seeds."
  value       = aws_route53_zone.internal.zone_id
}

output "gateway_names" {
  description = "The public gateway name and each region's own."
  value       = { latency = var.records.public_name, regional = var.records.regional }
}
