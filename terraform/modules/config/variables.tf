variable "cluster_name" {
  description = "Name of the cluster: prefixes cloud resources and the secret store's parameters."
  type        = string
  default     = "tern"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.cluster_name))
    error_message = "cluster_name: lowercase letters, digits and '-', starting with a letter, at most 24 characters."
  }
}

variable "release" {
  description = <<-EOT
    The release every node runs: its version, where the Linux binary is downloaded from (`{version}` in the URL
    is replaced by the version) and the binary's SHA-256, which the node checks before installing it.
  EOT
  type = object({
    version = string
    url     = string
    sha256  = string
  })

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+([-+][0-9A-Za-z.-]+)?$", var.release.version))
    error_message = "release.version must be a semantic version such as 0.1.0."
  }
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.release.sha256))
    error_message = "release.sha256 must be 64 lowercase hexadecimal digits (sha256sum's output)."
  }
  validation {
    condition     = startswith(var.release.url, "https://")
    error_message = "release.url must be an https:// URL."
  }
}

variable "regions" {
  description = <<-EOT
    The regions, by Tern region name (`iad`): the cloud region, the network range whose subnets hold the nodes,
    the zones the nodes spread over (round-robin), how many nodes, how many of them (the first ones) are the
    directory's voters, and the instance size and data volume of each node.
  EOT
  type = map(object({
    cloud_region   = optional(string, "")
    cidr           = string
    zones          = list(string)
    nodes          = number
    voters         = optional(number, 1)
    instance_type  = optional(string, "m6i.large")
    data_volume_gb = optional(number, 50)
  }))

  validation {
    condition     = length(var.regions) > 0 && alltrue([for name, r in var.regions : can(regex("^[a-z][a-z0-9]{1,9}$", name))])
    error_message = "regions: at least one, named with 2 to 10 lowercase letters and digits (e.g. iad)."
  }
  validation {
    condition     = alltrue([for r in var.regions : floor(r.nodes) == r.nodes && r.nodes >= 1 && r.nodes <= 50 && length(r.zones) >= 1])
    error_message = "regions: every region needs 1 to 50 nodes and at least one zone."
  }
  validation {
    condition     = alltrue([for r in var.regions : floor(r.voters) == r.voters && r.voters >= 0 && r.voters <= 2 && r.voters <= r.nodes])
    error_message = "regions: a region has 0, 1 or 2 voters, and no more than its nodes."
  }
  validation {
    condition     = sum([for r in var.regions : r.voters]) % 2 == 1
    error_message = "regions: the voters must be an odd number in total (a majority must survive the loss of any region)."
  }
  validation {
    condition     = alltrue([for r in var.regions : can(cidrsubnet(r.cidr, var.subnet_newbits, 0))])
    error_message = "regions: every cidr must be an IPv4 network with room for subnet_newbits more bits."
  }
}

variable "subnet_newbits" {
  description = "Bits added to a region's cidr for each zone's subnet: nodes of zone i live in cidrsubnet(cidr, newbits, i), the load balancer of zone i in cidrsubnet(cidr, newbits, 2^newbits/2 + i)."
  type        = number
  default     = 4
}

variable "host_offset" {
  description = "A node's address is the zone subnet's host number host_offset + n, for the n-th node of that zone (cloud providers reserve the first few addresses)."
  type        = number
  default     = 10
}

variable "gateway_port" {
  description = "TCP port of every node's gateway (HTTP; the load balancer in front serves HTTPS)."
  type        = number
  default     = 6420
}

variable "quic_port" {
  description = "UDP port of every node's QUIC transport to the other nodes."
  type        = number
  default     = 7420
}

variable "profile" {
  description = "Membership timing: `wan` for nodes across regions, `lan` within one region."
  type        = string
  default     = "wan"

  validation {
    condition     = contains(["lan", "wan"], var.profile)
    error_message = "profile is lan or wan."
  }
}

variable "fsync" {
  description = "Fsync every commit (survives power loss, costs latency)."
  type        = bool
  default     = true
}

variable "cors_origins" {
  description = "Web origins whose pages may call the gateways from a browser."
  type        = list(string)
  default     = []
}

variable "seed_discovery" {
  description = "How a node finds the others: `static` (each region's first node by address) or `dns` (the seeds' SRV record in the internal zone, see `dns`)."
  type        = string
  default     = "static"

  validation {
    condition     = contains(["static", "dns"], var.seed_discovery)
    error_message = "seed_discovery is static or dns."
  }
}

variable "dns" {
  description = "DNS names: `public_name` is the latency-routed gateway name (each region also gets REGION.public_name), `internal_zone` the private zone holding the nodes' A records and the seeds' SRV record."
  type = object({
    public_name   = string
    internal_zone = string
  })
  default = {
    public_name   = "tern.example.com"
    internal_zone = "tern.internal"
  }
}

variable "paths" {
  description = <<-EOT
    Where a node's files live. The defaults are those of ops/deploy/tern.service, which the user-data installs;
    with any other value `user_data` is null (the local example sets them to run nodes from a checkout).
    With `per_node` each node's data directory is data_dir/ID and its config file config_dir/ID.toml.
  EOT
  type = object({
    binary     = optional(string, "/usr/local/bin/tern")
    config_dir = optional(string, "/etc/tern")
    data_dir   = optional(string, "/var/lib/tern")
    per_node   = optional(bool, false)
  })
  default = {}
}

variable "data_device" {
  description = "Block device of each node's data volume, formatted (ext4, label tern-data) on first use and mounted on /var/lib/tern by tern-install (which waits for it to be attached); null keeps the data on the root volume. On Nitro instances the first extra EBS volume is /dev/nvme1n1."
  type        = string
  default     = "/dev/nvme1n1"
}

variable "secrets" {
  description = <<-EOT
    Where the nodes get the cluster CA, their certificates and the admin token. `ssm` (recommended): from AWS
    Systems Manager Parameter Store at boot, as SecureString parameters `<ssm_prefix>/ca.pem`,
    `<ssm_prefix>/admin-token`, `<ssm_prefix>/nodes/<ID>.pem` and `<ssm_prefix>/nodes/<ID>.key` (nothing
    secret in the user-data or Terraform's state). `inputs`: the PEM texts and the token given here, written by
    the user-data (they end up in the state and the instances' user-data).
  EOT
  type = object({
    source      = string
    ssm_prefix  = optional(string, "/tern")
    ca_cert     = optional(string, "")
    admin_token = optional(string, "")
    node_certs = optional(map(object({
      cert = string
      key  = string
    })), {})
  })
  sensitive = true
  default   = { source = "ssm" }

  validation {
    condition     = contains(["ssm", "inputs"], var.secrets.source)
    error_message = "secrets.source is ssm or inputs."
  }
  validation {
    condition     = var.secrets.source != "ssm" || can(regex("^(/[A-Za-z0-9_.-]+)+$", var.secrets.ssm_prefix))
    error_message = "secrets.ssm_prefix must be a parameter path such as /tern/prod."
  }
}
