# A Tern cluster on this machine: the configuration module (../../modules/config) lays it out exactly as for the
# cloud, and terraform_data resources run it: a CA and a certificate per node, one `tern node` process per node on
# its loopback address, and a check that the cluster converged and serves actors. `terraform destroy` stops the
# nodes and removes the state directory.

locals {
  tern_binary = startswith(var.tern_binary, "/") ? var.tern_binary : abspath("${path.module}/${var.tern_binary}")
  state_dir   = startswith(var.state_dir, "/") ? var.state_dir : abspath("${path.module}/${var.state_dir}")
  certs_dir   = "${local.state_dir}/certs"
  token_file  = "${local.state_dir}/admin-token"
  scripts     = abspath("${path.module}/scripts")
  client_modules = (var.client_modules == "" || startswith(var.client_modules, "/") ? var.client_modules
  : abspath("${path.module}/${var.client_modules}"))
}

module "config" {
  source = "../../modules/config"

  cluster_name = "local"
  release = {
    version = "0.1.0"
    url     = "https://localhost/unused"
    sha256  = "0000000000000000000000000000000000000000000000000000000000000000"
  }
  regions        = { for name, r in var.regions : name => merge(r, { cloud_region = "local" }) }
  subnet_newbits = 2
  profile        = var.profile
  fsync          = false
  data_device    = null
  paths          = { binary = local.tern_binary, config_dir = local.certs_dir, data_dir = "${local.state_dir}/data", per_node = true }
}

# The cluster CA, a certificate per node and the admin token, made once (kept while the state directory exists).
resource "terraform_data" "ca" {
  input = {
    state_dir = local.state_dir
    scripts   = local.scripts
  }
  triggers_replace = [local.state_dir, sort(keys(module.config.nodes))]

  lifecycle {
    precondition {
      condition     = fileexists(local.tern_binary)
      error_message = "No tern binary at ${local.tern_binary}: run `cargo build --release` at the repository's root, or set tern_binary."
    }
  }

  provisioner "local-exec" {
    command = "${local.scripts}/ca.sh"
    environment = {
      TERN       = local.tern_binary
      CERTS      = local.certs_dir
      NODES      = join(" ", sort(keys(module.config.nodes)))
      TOKEN_FILE = local.token_file
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "rm -rf -- '${self.input.state_dir}'"
  }
}

# One `tern node` process per node, started in the background with the config the module rendered.
resource "terraform_data" "node" {
  for_each = module.config.nodes

  input = {
    id          = each.key
    scripts     = local.scripts
    run_dir     = "${local.state_dir}/run"
    data_dir    = each.value.data_dir
    config_file = each.value.config_file
  }
  triggers_replace = [module.config.node_configs[each.key], local.tern_binary, terraform_data.ca.id]

  provisioner "local-exec" {
    command = "${local.scripts}/node-start.sh"
    environment = {
      TERN        = local.tern_binary
      ID          = each.key
      CONFIG      = module.config.node_configs[each.key]
      CONFIG_FILE = each.value.config_file
      RUN_DIR     = "${local.state_dir}/run"
      TOKEN_FILE  = local.token_file
      GATEWAY_URL = each.value.gateway_url
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "${self.input.scripts}/node-stop.sh"
    environment = {
      ID          = self.input.id
      RUN_DIR     = self.input.run_dir
      DATA_DIR    = self.input.data_dir
      CONFIG_FILE = self.input.config_file
    }
  }
}

# Waits until every node lists every other as alive, then creates an actor and calls it through every gateway
# (and, with client_modules, through the official client). Fails the apply when the cluster does not serve.
resource "terraform_data" "check" {
  triggers_replace = [for id, node in terraform_data.node : node.id]

  provisioner "local-exec" {
    command = "${local.scripts}/check.sh"
    environment = {
      TERN           = local.tern_binary
      GATEWAYS       = join(" ", [for id in sort(keys(module.config.nodes)) : module.config.nodes[id].gateway_url])
      NODES          = join(" ", sort(keys(module.config.nodes)))
      REGIONS        = join(" ", sort(keys(var.regions)))
      TOKEN_FILE     = local.token_file
      RESULT         = "${local.state_dir}/check.json"
      CLIENT_MODULES = local.client_modules
    }
  }
}
