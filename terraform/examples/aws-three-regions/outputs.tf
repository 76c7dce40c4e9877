output "gateway_url" {
  description = "The latency-routed gateway: clients use this."
  value       = "https://${var.public_name}"
}

output "regional_gateway_urls" {
  description = "Each region's own gateway."
  value       = { for region, name in module.config.dns_records.regional : region => "https://${name}" }
}

output "nodes" {
  description = "Each node's region, zone, private address and instance."
  value = {
    for id, node in module.config.nodes : id => {
      region   = node.region
      zone     = node.zone
      ip       = node.ip
      voter    = node.voter
      instance = merge(module.iad.instances, module.fra.instances, module.sin.instances)[id]
    }
  }
}

output "ssm_parameters" {
  description = "Per AWS region, the Parameter Store SecureStrings its nodes read at boot (create them first: README.md)."
  value = {
    for name, region in local.regions : region.cloud_region => concat(
      ["/${var.cluster_name}/ca.pem", "/${var.cluster_name}/admin-token"],
      flatten([for id in module.config.regions[name].node_ids : ["/${var.cluster_name}/nodes/${id}.pem", "/${var.cluster_name}/nodes/${id}.key"]]),
    )
  }
}

output "target_groups" {
  description = "Each region's gateway target group (a replaced node is back when it is healthy here)."
  value       = { iad = module.iad.target_group_arn, fra = module.fra.target_group_arn, sin = module.sin.target_group_arn }
}
