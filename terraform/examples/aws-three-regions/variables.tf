variable "cluster_name" {
  description = "The cluster's name: prefixes every resource and the Parameter Store path /CLUSTER."
  type        = string
  default     = "tern"
}

variable "release" {
  description = "The release the nodes install: version, download URL (`{version}` is replaced) and the binary's SHA-256."
  type = object({
    version = string
    url     = string
    sha256  = string
  })
}

variable "public_name" {
  description = "The gateway's public name (latency-routed), e.g. tern.example.com; each region also gets REGION.public_name."
  type        = string
}

variable "public_zone_id" {
  description = "The Route 53 public hosted zone holding public_name."
  type        = string
}

variable "certificate_arns" {
  description = "Per region (iad, fra, sin), an ACM certificate in that region covering public_name and REGION.public_name."
  type        = map(string)
}

variable "nodes_per_region" {
  description = "Nodes in each region (the first one of each is a voter and a seed)."
  type        = number
  default     = 2
}

variable "instance_type" {
  description = "The nodes' instance type (x86_64, Nitro)."
  type        = string
  default     = "m6i.large"
}

variable "data_volume_gb" {
  description = "Each node's data volume (gp3), in GiB."
  type        = number
  default     = 50
}

variable "deletion_protection" {
  description = "Protect the load balancers from deletion; set false and apply before `terraform destroy`."
  type        = bool
  default     = true
}
