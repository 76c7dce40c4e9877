# A fixture for ops/deploy/check.sh: the configuration module with the AWS example's three regions, so the
# rendered user-data and node configs can be checked by cloud-init's schema and by `tern node` itself.
# `secret_source = "inputs"` renders the variant that writes the certificates from inputs.

terraform {
  required_version = ">= 1.9"
}

variable "secret_source" {
  type    = string
  default = "ssm"
}

module "config" {
  source = "../.."

  cluster_name = "tern-prod"
  release = {
    version = "0.1.0"
    url     = "https://downloads.example.com/tern/{version}/tern-linux-x86_64"
    sha256  = "0000000000000000000000000000000000000000000000000000000000000000"
  }
  regions = {
    iad = { cloud_region = "us-east-1", cidr = "10.10.0.0/16", zones = ["us-east-1a", "us-east-1b", "us-east-1c"], nodes = 3, voters = 1 }
    fra = { cloud_region = "eu-central-1", cidr = "10.20.0.0/16", zones = ["eu-central-1a", "eu-central-1b"], nodes = 2, voters = 1 }
    sin = { cloud_region = "ap-southeast-1", cidr = "10.30.0.0/16", zones = ["ap-southeast-1a"], nodes = 1, voters = 1 }
  }
  secrets = {
    source      = var.secret_source
    ssm_prefix  = "/tern-prod"
    ca_cert     = var.secret_source == "inputs" ? "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n" : ""
    admin_token = var.secret_source == "inputs" ? "fixture-token" : ""
    node_certs = var.secret_source == "inputs" ? {
      for id in ["iad-1", "iad-2", "iad-3", "fra-1", "fra-2", "sin-1"] : id => {
        cert = "-----BEGIN CERTIFICATE-----\n${id}\n-----END CERTIFICATE-----\n"
        key  = "-----BEGIN PRIVATE KEY-----\n${id}\n-----END PRIVATE KEY-----\n"
      }
    } : {}
  }
}

output "user_data" {
  value     = module.config.user_data
  sensitive = true
}

output "node_configs" {
  value = module.config.node_configs
}
