variable "cluster_name" {
  description = "The cluster's name (the configuration module's cluster_name): prefixes every resource's name."
  type        = string
}

variable "region" {
  description = "The Tern region this module builds (a key of the configuration module's regions, e.g. iad)."
  type        = string
}

variable "layout" {
  description = "The region's layout: the configuration module's regions[region] (cidr, zones, node and public subnets, node ids, instance type)."
  type = object({
    cloud_region   = string
    cidr           = string
    zones          = list(string)
    node_subnets   = map(string)
    public_subnets = map(string)
    node_ids       = list(string)
    instance_type  = string
    data_volume_gb = number
  })
}

variable "nodes" {
  description = "The configuration module's nodes (all regions'; this module builds those of its region)."
  type = map(object({
    region         = string
    zone           = string
    ip             = string
    instance_type  = string
    data_volume_gb = number
  }))
}

variable "user_data" {
  description = "The configuration module's user_data, by node id."
  type        = map(string)
  sensitive   = true
}

variable "node_cidrs" {
  description = "Every region's node subnets (the configuration module's node_cidrs): the only sources and destinations of QUIC traffic."
  type        = list(string)
}

variable "ports" {
  description = "The gateway (TCP) and QUIC (UDP) ports (the configuration module's ports)."
  type = object({
    gateway = number
    quic    = number
  })
}

variable "certificate_arn" {
  description = "The ACM certificate (in this region) the load balancer serves HTTPS with, e.g. for tern.example.com and iad.tern.example.com."
  type        = string
}

variable "ssm_prefix" {
  description = "The Parameter Store path holding the cluster's secrets (the configuration module's secrets.ssm_prefix): each node may read its own and the shared ones only. Null when the secrets come from inputs."
  type        = string
  default     = null
}

variable "ami_id" {
  description = "The nodes' image; null takes the latest Amazon Linux 2023 (x86_64), which has cloud-init, curl and the AWS CLI."
  type        = string
  default     = null
}

variable "nat_gateway" {
  description = "Give the node subnets a NAT gateway for outbound HTTPS (the release download, Parameter Store, Session Manager)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion (turn off before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "How long the VPC flow logs are kept."
  type        = number
  default     = 365
}

variable "access_log_days" {
  description = "How long the load balancer's access logs are kept."
  type        = number
  default     = 90
}
