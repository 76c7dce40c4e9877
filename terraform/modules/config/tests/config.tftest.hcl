# `terraform test` in terraform/modules/config: the layout, the node configs, the user-data and the DNS records
# computed for a three-region cluster, and the inputs the module refuses.

variables {
  release = {
    version = "1.2.3"
    url     = "https://downloads.example.com/tern/{version}/tern-linux-x86_64"
    sha256  = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
  }
  regions = {
    iad = { cloud_region = "us-east-1", cidr = "10.10.0.0/16", zones = ["us-east-1a", "us-east-1b"], nodes = 3, voters = 1 }
    fra = { cloud_region = "eu-central-1", cidr = "10.20.0.0/16", zones = ["eu-central-1a"], nodes = 2, voters = 1 }
    sin = { cloud_region = "ap-southeast-1", cidr = "10.30.0.0/16", zones = ["ap-southeast-1a"], nodes = 1, voters = 1 }
  }
}

run "layout" {
  command = apply

  assert {
    condition     = sort(keys(output.nodes)) == tolist(["fra-1", "fra-2", "iad-1", "iad-2", "iad-3", "sin-1"])
    error_message = "one node per count, named REGION-N: ${jsonencode(keys(output.nodes))}"
  }
  assert {
    condition = [for id in ["iad-1", "iad-2", "iad-3"] : [output.nodes[id].zone, output.nodes[id].ip]] == [
      ["us-east-1a", "10.10.0.10"], ["us-east-1b", "10.10.16.10"], ["us-east-1a", "10.10.0.11"],
    ]
    error_message = "nodes go round-robin over the zones, each zone's n-th node at host 10 + n of its subnet"
  }
  assert {
    condition     = output.regions.iad.node_subnets == { "us-east-1a" = "10.10.0.0/20", "us-east-1b" = "10.10.16.0/20" } && output.regions.iad.public_subnets == { "us-east-1a" = "10.10.128.0/20", "us-east-1b" = "10.10.144.0/20" }
    error_message = "node subnets in the lower half of the region's range, load-balancer subnets in the upper half"
  }
  assert {
    condition     = output.voters == ["fra-1@10.20.0.10:7420", "iad-1@10.10.0.10:7420", "sin-1@10.30.0.10:7420"]
    error_message = "the first node of each region votes: ${jsonencode(output.voters)}"
  }
  assert {
    condition     = output.seeds == ["10.20.0.10:7420", "10.10.0.10:7420", "10.30.0.10:7420"]
    error_message = "each region's first node is a seed"
  }
  assert {
    condition     = sort(output.node_cidrs) == tolist(["10.10.0.0/20", "10.10.16.0/20", "10.20.0.0/20", "10.30.0.0/20"])
    error_message = "the QUIC port is open to the node subnets only: ${jsonencode(output.node_cidrs)}"
  }
}

run "node_configs" {
  command = apply

  assert {
    condition = strcontains(output.node_configs["iad-1"], join("\n", [
      "region = \"iad\"",
      "zone = \"us-east-1a\"",
      "listen = \"10.10.0.10:6420\"",
      "quic-listen = \"10.10.0.10:7420\"",
      "advertise = \"10.10.0.10:7420\"",
      "join = [\"10.20.0.10:7420\",\"10.30.0.10:7420\"]",
      "voters = [\"fra-1@10.20.0.10:7420\",\"iad-1@10.10.0.10:7420\",\"sin-1@10.30.0.10:7420\"]",
      "data-dir = \"/var/lib/tern\"",
      "tls-ca = \"/etc/tern/ca.pem\"",
      "tls-cert = \"/etc/tern/iad-1.pem\"",
      "tls-key = \"/etc/tern/iad-1.key\"",
      "profile = \"wan\"",
      "fsync = true",
    ]))
    error_message = "iad-1's config: ${output.node_configs["iad-1"]}"
  }
  assert {
    condition     = strcontains(output.node_configs["iad-2"], "join = [\"10.20.0.10:7420\",\"10.10.0.10:7420\",\"10.30.0.10:7420\"]")
    error_message = "a node that is not a seed joins through every seed"
  }
  assert {
    condition     = !strcontains(output.node_configs["sin-1"], "admin-token") && !strcontains(output.node_configs["sin-1"], "cors-origin")
    error_message = "no admin token in a config file, and no CORS origin unless asked for"
  }
}

run "user_data_fetches_secrets_from_ssm" {
  command = apply

  variables {
    secrets = { source = "ssm", ssm_prefix = "/tern/prod" }
  }

  assert {
    condition     = startswith(output.user_data["fra-2"], "#cloud-config\n") && can(yamldecode(output.user_data["fra-2"]))
    error_message = "user-data is a #cloud-config YAML document"
  }
  assert {
    condition     = [for f in yamldecode(output.user_data["fra-2"]).write_files : f.path] == ["/etc/systemd/system/tern.service", "/usr/local/sbin/tern-install", "/etc/tern/node.toml"]
    error_message = "with ssm, the user-data holds the unit, the install script and the node's config, and no secret"
  }
  assert {
    condition     = yamldecode(output.user_data["fra-2"]).write_files[0].content == file("../../../ops/deploy/tern.service")
    error_message = "the unit installed is ops/deploy/tern.service"
  }
  assert {
    condition = alltrue([for text in [
      "--region 'eu-central-1'",
      "fetch '/tern/prod/nodes/fra-2.key' \"$conf/fra-2.key\" 0640",
      "--name '/tern/prod/admin-token'",
      "version=$${1:-1.2.3}",
      "url=$${2:-https://downloads.example.com/tern/{version}/tern-linux-x86_64}",
      "sha256=$${3:-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}",
      "data_device='/dev/nvme1n1'",
    ] : strcontains(yamldecode(output.user_data["fra-2"]).write_files[1].content, text)])
    error_message = "the install script fetches fra-2's secrets from its region's Parameter Store and checks the release"
  }
  assert {
    condition     = one([for u in yamldecode(output.user_data["fra-2"]).users : u if can(u.name)]).name == "tern" && yamldecode(output.user_data["fra-2"]).runcmd == [["/usr/local/sbin/tern-install"]]
    error_message = "user-data creates the tern user and runs tern-install"
  }
}

run "user_data_writes_secrets_from_inputs" {
  command = apply

  variables {
    secrets = {
      source      = "inputs"
      ca_cert     = "CA PEM"
      admin_token = "t0ken"
      node_certs  = { for id in ["iad-1", "iad-2", "iad-3", "fra-1", "fra-2", "sin-1"] : id => { cert = "${id} PEM", key = "${id} KEY" } }
    }
  }

  assert {
    condition = { for f in yamldecode(output.user_data["iad-3"]).write_files : f.path => [f.content, f.permissions] if startswith(f.path, "/etc/tern/") && f.path != "/etc/tern/node.toml" } == {
      "/etc/tern/ca.pem"    = ["CA PEM", "0644"]
      "/etc/tern/iad-3.pem" = ["iad-3 PEM", "0640"]
      "/etc/tern/iad-3.key" = ["iad-3 KEY", "0640"]
      "/etc/tern/tern.env"  = ["TERN_ADMIN_TOKEN=t0ken\n", "0640"]
    }
    error_message = "with inputs, the user-data writes the CA, the node's own certificate and key, and the token"
  }
  assert {
    condition     = !strcontains(yamldecode(output.user_data["iad-3"]).write_files[1].content, "aws ssm")
    error_message = "with inputs, nothing is fetched from Parameter Store"
  }
}

run "seeds_by_dns" {
  command = apply

  variables {
    seed_discovery = "dns"
    dns            = { public_name = "api.example.net", internal_zone = "prod.tern.internal" }
  }

  assert {
    condition     = strcontains(output.node_configs["iad-2"], "join = [\"dns:_tern._udp.prod.tern.internal\"]")
    error_message = "with dns discovery every node joins through the seeds' SRV record"
  }
  assert {
    condition = output.dns_records.seed_srv == {
      name    = "_tern._udp.prod.tern.internal"
      records = ["0 0 7420 fra-1.nodes.prod.tern.internal", "0 0 7420 iad-1.nodes.prod.tern.internal", "0 0 7420 sin-1.nodes.prod.tern.internal"]
    }
    error_message = "the SRV record names every seed and its QUIC port: ${jsonencode(output.dns_records.seed_srv)}"
  }
  assert {
    condition     = output.dns_records.nodes["iad-3.nodes.prod.tern.internal"] == "10.10.0.11" && length(output.dns_records.nodes) == 6
    error_message = "an A record per node in the internal zone"
  }
  assert {
    condition     = [for r in output.dns_records.latency : [r.name, r.set_identifier, r.cloud_region]] == [["api.example.net", "fra", "eu-central-1"], ["api.example.net", "iad", "us-east-1"], ["api.example.net", "sin", "ap-southeast-1"]] && output.dns_records.regional.sin == "sin.api.example.net"
    error_message = "one latency record per region on the public name, and a name per region"
  }
}

run "local_paths" {
  command = apply

  variables {
    paths = { binary = "/opt/tern/bin/tern", config_dir = "/tmp/cluster/etc", data_dir = "/tmp/cluster/data", per_node = true }
  }

  assert {
    condition     = alltrue([for id, ud in output.user_data : ud == null])
    error_message = "user-data is only rendered for the paths of the systemd unit"
  }
  assert {
    condition     = output.nodes["fra-2"].config_file == "/tmp/cluster/etc/fra-2.toml" && strcontains(output.node_configs["fra-2"], "data-dir = \"/tmp/cluster/data/fra-2\"") && strcontains(output.node_configs["fra-2"], "tls-key = \"/tmp/cluster/etc/fra-2.key\"")
    error_message = "per_node gives each node its own config file and data directory"
  }
}

run "an_even_number_of_voters_is_refused" {
  command = plan

  variables {
    regions = {
      iad = { cidr = "10.10.0.0/16", zones = ["a"], nodes = 2, voters = 2 }
      fra = { cidr = "10.20.0.0/16", zones = ["a"], nodes = 2, voters = 2 }
    }
  }
  expect_failures = [var.regions]
}

run "more_voters_than_nodes_are_refused" {
  command = plan

  variables {
    regions = {
      iad = { cidr = "10.10.0.0/16", zones = ["a"], nodes = 1, voters = 2 }
      fra = { cidr = "10.20.0.0/16", zones = ["a"], nodes = 1, voters = 1 }
    }
  }
  expect_failures = [var.regions]
}

run "an_unchecked_release_is_refused" {
  command = plan

  variables {
    release = { version = "1.2.3", url = "http://downloads.example.com/tern", sha256 = "unknown" }
  }
  expect_failures = [var.release]
}

run "inputs_without_a_node_certificate_are_refused" {
  command = plan

  variables {
    secrets = { source = "inputs", ca_cert = "CA", admin_token = "t", node_certs = { "iad-1" = { cert = "c", key = "k" } } }
  }
  expect_failures = [output.user_data]
}
