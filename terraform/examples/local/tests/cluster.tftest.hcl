# `terraform test` in terraform/examples/local: applies the example for real (tern node processes on loopback),
# asserts that the cluster converged and served an actor, then destroys it. The binary is the example's default
# unless given: `terraform test -var tern_binary=../../../target/debug/tern`.

variables {
  # Its own addresses and directory, so a cluster started by hand from this directory can keep running.
  state_dir = ".cluster-test"
  regions = {
    iad = { cidr = "127.0.11.0/24", nodes = 2 }
    fra = { cidr = "127.0.12.0/24" }
    sin = { cidr = "127.0.13.0/24" }
  }
}

run "cluster_serves_an_actor" {
  command = apply

  assert {
    condition = output.gateway_urls == {
      "fra-1" = "http://127.0.12.10:6420"
      "iad-1" = "http://127.0.11.10:6420"
      "iad-2" = "http://127.0.11.11:6420"
      "sin-1" = "http://127.0.13.10:6420"
    }
    error_message = "one gateway per node, on its region's loopback range: ${jsonencode(output.gateway_urls)}"
  }
  assert {
    condition     = output.voters == ["fra-1@127.0.12.10:7420", "iad-1@127.0.11.10:7420", "sin-1@127.0.13.10:7420"]
    error_message = "each region's first node votes"
  }
  assert {
    condition     = jsondecode(file(output.check_file)).converged == ["fra-1", "iad-1", "iad-2", "sin-1"]
    error_message = "every gateway listed every node alive: ${file(output.check_file)}"
  }
  assert {
    condition     = jsondecode(file(output.check_file)).counts == [1, 2, 3, 4] && jsondecode(file(output.check_file)).home == "sin"
    error_message = "an actor homed in sin counted once through each of the four gateways: ${file(output.check_file)}"
  }
  assert {
    condition     = var.client_modules == "" || jsondecode(file(output.check_file)).client == { stateless = 5, reply = 6, event = 6 }
    error_message = "with client_modules, the official client called through one gateway and connected through another: ${file(output.check_file)}"
  }
}
