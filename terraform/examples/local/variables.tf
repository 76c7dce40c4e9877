variable "tern_binary" {
  description = "The `tern` binary the nodes run; a relative path is relative to this directory. CI points it at ../../../target/debug/tern."
  type        = string
  default     = "../../../target/release/tern"
}

variable "state_dir" {
  description = "Where the cluster's certificates, admin token, node configs, data and logs go (removed by `terraform destroy`); a relative path is relative to this directory."
  type        = string
  default     = ".cluster"
}

variable "regions" {
  description = "The regions, as the configuration module takes them; each gets its own loopback range (127.0.R.0/24), nodes from 127.0.R.10 on."
  type = map(object({
    cidr   = string
    zones  = optional(list(string), ["a"])
    nodes  = optional(number, 1)
    voters = optional(number, 1)
  }))
  default = {
    iad = { cidr = "127.0.1.0/24" }
    fra = { cidr = "127.0.2.0/24" }
    sin = { cidr = "127.0.3.0/24" }
  }
}

variable "profile" {
  description = "Membership timing: `lan` (a dead node is declared down in about 5 s) suits one machine."
  type        = string
  default     = "lan"
}

variable "client_modules" {
  description = "A node_modules directory holding the official client (rivetkit) and ws, e.g. ../../../tests/js/node_modules: the check then also drives the cluster with it. Empty: the check uses plain HTTP only."
  type        = string
  default     = ""
}
