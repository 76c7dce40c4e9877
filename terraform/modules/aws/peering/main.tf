# A VPC peering between two regions' node networks, with routes both ways: QUIC between nodes travels over
# AWS's backbone on private addresses. The example peers every pair of regions.

terraform {
  required_version = ">= 1.9"
  required_providers {
    aws = {
      source                = "hashicorp/aws"
      version               = ">= 5.60"
      configuration_aliases = [aws.requester, aws.accepter]
    }
  }
}

variable "name" {
  description = "The peering's name, e.g. tern-iad-fra."
  type        = string
}

variable "requester" {
  description = "The requesting side: the region module's vpc_id, cidr and node_route_table_id."
  type = object({
    vpc_id         = string
    cidr           = string
    route_table_id = string
  })
}

variable "accepter" {
  description = "The accepting side, and its cloud region."
  type = object({
    vpc_id         = string
    cidr           = string
    route_table_id = string
    cloud_region   = string
  })
}

resource "aws_vpc_peering_connection" "this" {
  provider = aws.requester

  vpc_id      = var.requester.vpc_id
  peer_vpc_id = var.accepter.vpc_id
  peer_region = var.accepter.cloud_region
  auto_accept = false
  tags        = { Name = var.name }
}

resource "aws_vpc_peering_connection_accepter" "this" {
  provider = aws.accepter

  vpc_peering_connection_id = aws_vpc_peering_connection.this.id
  auto_accept               = true
  tags                      = { Name = var.name }
}

resource "aws_route" "requester" {
  provider = aws.requester

  route_table_id            = var.requester.route_table_id
  destination_cidr_block    = var.accepter.cidr
  vpc_peering_connection_id = aws_vpc_peering_connection.this.id

  depends_on = [aws_vpc_peering_connection_accepter.this]
}

resource "aws_route" "accepter" {
  provider = aws.accepter

  route_table_id            = var.accepter.route_table_id
  destination_cidr_block    = var.requester.cidr
  vpc_peering_connection_id = aws_vpc_peering_connection.this.id

  depends_on = [aws_vpc_peering_connection_accepter.this]
}

output "id" {
  description = "The peering connection."
  value       = aws_vpc_peering_connection.this.id
}
