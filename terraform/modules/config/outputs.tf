output "release" {
  description = "The release the nodes run, with the binary's URL resolved."
  value       = { version = var.release.version, url = local.binary_url, sha256 = var.release.sha256 }
}

output "regions" {
  description = "Per region: cloud region, network range, zones, each zone's node and load-balancer subnets, node ids, voter ids, seed id, gateway name, instance type and data volume size."
  value       = local.region_layout
}

output "nodes" {
  description = "Per node id: region, cloud region, zone, subnet, address, QUIC and gateway addresses, gateway URL, whether it is a voter and a seed, instance type, data volume size, config file path and data directory."
  value = {
    for id, node in local.node_by_id : id => merge(node, {
      quic        = local.quic_addr[id]
      gateway     = local.gateway_addr[id]
      gateway_url = "http://${local.gateway_addr[id]}"
      config_file = local.config_file[id]
      data_dir    = local.data_dir[id]
      fqdn        = local.node_fqdn[id]
    })
  }
}

output "node_configs" {
  description = "Per node id: the text of its `tern node --config` file (TOML)."
  value       = local.node_config
}

output "user_data" {
  description = "Per node id: cloud-init user-data (#cloud-config) creating the tern user, installing the release and the systemd unit, writing (or fetching) the certificates and starting the node. Null unless `paths` are the defaults."
  value       = local.user_data
  sensitive   = true

  precondition {
    condition     = var.secrets.source != "inputs" || (trimspace(var.secrets.ca_cert) != "" && trimspace(var.secrets.admin_token) != "" && alltrue([for id in keys(local.node_by_id) : contains(keys(var.secrets.node_certs), id)]))
    error_message = "secrets.source = \"inputs\" needs ca_cert, admin_token and a node_certs entry for every node."
  }
}

output "seeds" {
  description = "The seeds' QUIC addresses (each region's first node)."
  value       = local.seeds
}

output "voters" {
  description = "The directory's voters as `--voters` takes them (ID@IP:PORT), the same on every node."
  value       = local.voters
}

output "node_cidrs" {
  description = "Every subnet that holds nodes, in every region: the only sources allowed to reach the QUIC port."
  value       = local.node_cidrs
}

output "ports" {
  description = "The gateway (TCP) and QUIC (UDP) ports."
  value       = { gateway = var.gateway_port, quic = var.quic_port }
}

output "unit" {
  description = "The systemd unit the user-data installs (ops/deploy/tern.service)."
  value       = local.unit
}

output "dns_records" {
  description = "The DNS records to create: the latency-routed gateway name (one record per region), each region's own gateway name, an A record per node in the internal zone, and the SRV record listing the seeds."
  value = {
    public_name   = var.dns.public_name
    internal_zone = var.dns.internal_zone
    latency = [for name in local.region_names : {
      name           = var.dns.public_name
      set_identifier = name
      region         = name
      cloud_region   = var.regions[name].cloud_region
    }]
    regional = { for name in local.region_names : name => local.region_layout[name].gateway_name }
    nodes    = { for id, node in local.node_by_id : local.node_fqdn[id] => node.ip }
    seed_srv = {
      name    = local.seed_srv
      records = [for id in local.seed_ids : "0 0 ${var.quic_port} ${local.node_fqdn[id]}"]
    }
  }
}
