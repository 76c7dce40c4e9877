output "gateway_urls" {
  description = "Every node's gateway URL, by node id."
  value       = { for id, node in module.config.nodes : id => node.gateway_url }
}

output "regions" {
  description = "The node ids of each region."
  value       = { for name, region in module.config.regions : name => region.node_ids }
}

output "voters" {
  description = "The directory's voters, as every node was given them."
  value       = module.config.voters
}

output "admin_token_file" {
  description = "The file holding the admin token: `tern members --endpoint URL --admin-token \"$(cat FILE)\"`."
  value       = local.token_file
}

output "check_file" {
  description = "What the check found (JSON), written once the cluster served an actor."
  value       = terraform_data.check.id == "" ? "" : "${local.state_dir}/check.json"
}

output "logs" {
  description = "Each node's log file."
  value       = { for id in keys(module.config.nodes) : id => "${local.state_dir}/run/${id}.log" }
}
