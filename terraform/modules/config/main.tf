# The cluster's layout, computed: every node's id, zone and address; the seeds and the voters; each node's
# `tern node` config file and cloud-init user-data; the DNS records. No provider, so `terraform test` runs it
# anywhere, and the cloud modules (../aws) and the local example (../../examples/local) consume the same values.

locals {
  region_names = sort(keys(var.regions))

  # Zone subnets: nodes of zone i in cidrsubnet(cidr, newbits, i), the load balancer's in the upper half.
  public_subnet_base = pow(2, var.subnet_newbits) / 2
  region_layout = {
    for name in local.region_names : name => {
      cloud_region    = var.regions[name].cloud_region
      cidr            = var.regions[name].cidr
      zones           = var.regions[name].zones
      node_subnets    = { for i, zone in var.regions[name].zones : zone => cidrsubnet(var.regions[name].cidr, var.subnet_newbits, i) }
      public_subnets  = { for i, zone in var.regions[name].zones : zone => cidrsubnet(var.regions[name].cidr, var.subnet_newbits, local.public_subnet_base + i) }
      node_ids        = [for n in range(var.regions[name].nodes) : "${name}-${n + 1}"]
      voter_ids       = [for n in range(var.regions[name].voters) : "${name}-${n + 1}"]
      seed_id         = "${name}-1"
      gateway_name    = "${name}.${var.dns.public_name}"
      instance_type   = var.regions[name].instance_type
      data_volume_gb  = var.regions[name].data_volume_gb
      gateway_targets = [for n in range(var.regions[name].nodes) : "${name}-${n + 1}"]
    }
  }

  # Node n (from 0) of a region: zone n mod zones, host host_offset + n div zones of that zone's subnet.
  node_list = flatten([
    for name in local.region_names : [
      for n in range(var.regions[name].nodes) : {
        id             = "${name}-${n + 1}"
        region         = name
        cloud_region   = var.regions[name].cloud_region
        zone           = var.regions[name].zones[n % length(var.regions[name].zones)]
        subnet         = local.region_layout[name].node_subnets[var.regions[name].zones[n % length(var.regions[name].zones)]]
        ip             = cidrhost(local.region_layout[name].node_subnets[var.regions[name].zones[n % length(var.regions[name].zones)]], var.host_offset + floor(n / length(var.regions[name].zones)))
        voter          = n < var.regions[name].voters
        seed           = n == 0
        instance_type  = var.regions[name].instance_type
        data_volume_gb = var.regions[name].data_volume_gb
      }
    ]
  ])
  node_by_id = { for node in local.node_list : node.id => node }

  quic_addr    = { for id, node in local.node_by_id : id => "${node.ip}:${var.quic_port}" }
  gateway_addr = { for id, node in local.node_by_id : id => "${node.ip}:${var.gateway_port}" }

  voters     = [for node in local.node_list : "${node.id}@${local.quic_addr[node.id]}" if node.voter]
  seed_ids   = [for node in local.node_list : node.id if node.seed]
  seeds      = [for id in local.seed_ids : local.quic_addr[id]]
  seed_srv   = "_tern._udp.${var.dns.internal_zone}"
  node_fqdn  = { for id in keys(local.node_by_id) : id => "${id}.nodes.${var.dns.internal_zone}" }
  node_cidrs = distinct([for node in local.node_list : node.subnet])

  # Each node joins through every seed but itself (a seed that is not up yet is retried in the background).
  join = {
    for id in keys(local.node_by_id) : id => (
      var.seed_discovery == "dns" ? ["dns:${local.seed_srv}"] : [for seed in local.seed_ids : local.quic_addr[seed] if seed != id]
    )
  }

  default_paths = { binary = "/usr/local/bin/tern", config_dir = "/etc/tern", data_dir = "/var/lib/tern", per_node = false }
  host_layout   = var.paths == local.default_paths
  config_file   = { for id in keys(local.node_by_id) : id => var.paths.per_node ? "${var.paths.config_dir}/${id}.toml" : "${var.paths.config_dir}/node.toml" }
  data_dir      = { for id in keys(local.node_by_id) : id => var.paths.per_node ? "${var.paths.data_dir}/${id}" : var.paths.data_dir }

  node_config = {
    for id, node in local.node_by_id : id => templatefile("${path.module}/templates/node.toml.tftpl", {
      id           = id
      version      = var.release.version
      region       = node.region
      zone         = node.zone
      listen       = local.gateway_addr[id]
      quic         = local.quic_addr[id]
      join         = local.join[id]
      voters       = local.voters
      data_dir     = local.data_dir[id]
      tls_ca       = "${var.paths.config_dir}/ca.pem"
      tls_cert     = "${var.paths.config_dir}/${id}.pem"
      tls_key      = "${var.paths.config_dir}/${id}.key"
      profile      = var.profile
      fsync        = var.fsync
      cors_origins = var.cors_origins
    })
  }

  # The unit ops/deploy/tern.service is the one source of the service's definition.
  unit         = file("${path.module}/../../../ops/deploy/tern.service")
  binary_url   = replace(var.release.url, "{version}", var.release.version)
  secret_files = var.secrets.source == "inputs"

  install_script = {
    for id in keys(local.node_by_id) : id => templatefile("${path.module}/templates/install.sh.tftpl", {
      id          = id
      version     = var.release.version
      url         = var.release.url
      sha256      = var.release.sha256
      ssm         = var.secrets.source == "ssm"
      ssm_prefix  = var.secrets.ssm_prefix
      region      = local.node_by_id[id].cloud_region
      config_dir  = local.default_paths.config_dir
      data_device = var.data_device
    })
  }

  cloud_config = {
    for id in keys(local.node_by_id) : id => {
      users = [
        "default",
        { name = "tern", system = true, shell = "/usr/sbin/nologin", homedir = local.default_paths.data_dir, no_create_home = true, lock_passwd = true },
      ]
      write_files = concat(
        [
          { path = "/etc/systemd/system/tern.service", content = local.unit, owner = "root:root", permissions = "0644" },
          { path = "/usr/local/sbin/tern-install", content = local.install_script[id], owner = "root:root", permissions = "0755" },
          # Deferred: written once the tern user exists (users-groups runs after write_files).
          { path = "/etc/tern/node.toml", content = local.node_config[id], owner = "root:tern", permissions = "0640", defer = true },
        ],
        local.secret_files ? [
          { path = "/etc/tern/ca.pem", content = var.secrets.ca_cert, owner = "root:root", permissions = "0644", defer = true },
          { path = "/etc/tern/${id}.pem", content = try(var.secrets.node_certs[id].cert, ""), owner = "root:tern", permissions = "0640", defer = true },
          { path = "/etc/tern/${id}.key", content = try(var.secrets.node_certs[id].key, ""), owner = "root:tern", permissions = "0640", defer = true },
          { path = "/etc/tern/tern.env", content = "TERN_ADMIN_TOKEN=${var.secrets.admin_token}\n", owner = "root:tern", permissions = "0640", defer = true },
        ] : [],
      )
      # tern-install mounts the data volume, fetches the secrets (ssm), installs the binary and starts the unit.
      runcmd = [["/usr/local/sbin/tern-install"]]
    }
  }

  user_data = { for id in keys(local.node_by_id) : id => local.host_layout ? "#cloud-config\n${yamlencode(local.cloud_config[id])}" : null }
}
