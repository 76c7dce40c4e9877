output "vpc_id" {
  description = "The region's VPC."
  value       = aws_vpc.this.id
}

output "cidr" {
  description = "The VPC's range."
  value       = aws_vpc.this.cidr_block
}

output "node_route_table_id" {
  description = "The node subnets' route table (the peering module adds the other regions' routes to it)."
  value       = aws_route_table.node.id
}

output "load_balancer" {
  description = "The gateway load balancer's DNS name and hosted zone, for Route 53 alias records."
  value       = { dns_name = aws_lb.gateway.dns_name, zone_id = aws_lb.gateway.zone_id }
}

output "instances" {
  description = "Each node's instance id (for Session Manager and `terraform apply -replace`)."
  value       = { for id, instance in aws_instance.node : id => instance.id }
}

output "target_group_arn" {
  description = "The gateway target group: wait for a replaced node to be healthy here before the next."
  value       = aws_lb_target_group.gateway.arn
}
