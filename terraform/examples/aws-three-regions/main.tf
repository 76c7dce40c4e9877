# Tern in three AWS regions: iad (us-east-1), fra (eu-central-1), sin (ap-southeast-1). The configuration module
# lays the cluster out; a region module per region builds its network, nodes and load balancer; every pair of
# regions is peered; Route 53 routes the public name to the nearest region. Secrets come from Parameter Store
# (README.md says which parameters to create before the first apply).

locals {
  tags = { Project = "tern", Cluster = var.cluster_name }
  regions = {
    iad = { cloud_region = "us-east-1", cidr = "10.10.0.0/16", zones = ["us-east-1a", "us-east-1b", "us-east-1c"] }
    fra = { cloud_region = "eu-central-1", cidr = "10.20.0.0/16", zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"] }
    sin = { cloud_region = "ap-southeast-1", cidr = "10.30.0.0/16", zones = ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"] }
  }
}

module "config" {
  source = "../../modules/config"

  cluster_name = var.cluster_name
  release      = var.release
  regions = {
    for name, region in local.regions : name => merge(region, {
      nodes          = var.nodes_per_region
      voters         = 1
      instance_type  = var.instance_type
      data_volume_gb = var.data_volume_gb
    })
  }
  # Seeds by address: each region's nodes find each other as soon as they boot, before DNS exists. With
  # seed_discovery = "dns" they join through the SRV record of the private zone instead.
  seed_discovery = "static"
  dns            = { public_name = var.public_name, internal_zone = "${var.cluster_name}.internal" }
  secrets        = { source = "ssm", ssm_prefix = "/${var.cluster_name}" }
}

module "iad" {
  source    = "../../modules/aws/region"
  providers = { aws = aws.iad }

  cluster_name        = var.cluster_name
  region              = "iad"
  layout              = module.config.regions["iad"]
  nodes               = module.config.nodes
  user_data           = module.config.user_data
  node_cidrs          = module.config.node_cidrs
  ports               = module.config.ports
  certificate_arn     = var.certificate_arns["iad"]
  ssm_prefix          = "/${var.cluster_name}"
  deletion_protection = var.deletion_protection
}

module "fra" {
  source    = "../../modules/aws/region"
  providers = { aws = aws.fra }

  cluster_name        = var.cluster_name
  region              = "fra"
  layout              = module.config.regions["fra"]
  nodes               = module.config.nodes
  user_data           = module.config.user_data
  node_cidrs          = module.config.node_cidrs
  ports               = module.config.ports
  certificate_arn     = var.certificate_arns["fra"]
  ssm_prefix          = "/${var.cluster_name}"
  deletion_protection = var.deletion_protection
}

module "sin" {
  source    = "../../modules/aws/region"
  providers = { aws = aws.sin }

  cluster_name        = var.cluster_name
  region              = "sin"
  layout              = module.config.regions["sin"]
  nodes               = module.config.nodes
  user_data           = module.config.user_data
  node_cidrs          = module.config.node_cidrs
  ports               = module.config.ports
  certificate_arn     = var.certificate_arns["sin"]
  ssm_prefix          = "/${var.cluster_name}"
  deletion_protection = var.deletion_protection
}

module "peering_iad_fra" {
  source    = "../../modules/aws/peering"
  providers = { aws.requester = aws.iad, aws.accepter = aws.fra }

  name      = "${var.cluster_name}-iad-fra"
  requester = { vpc_id = module.iad.vpc_id, cidr = module.iad.cidr, route_table_id = module.iad.node_route_table_id }
  accepter  = { vpc_id = module.fra.vpc_id, cidr = module.fra.cidr, route_table_id = module.fra.node_route_table_id, cloud_region = "eu-central-1" }
}

module "peering_iad_sin" {
  source    = "../../modules/aws/peering"
  providers = { aws.requester = aws.iad, aws.accepter = aws.sin }

  name      = "${var.cluster_name}-iad-sin"
  requester = { vpc_id = module.iad.vpc_id, cidr = module.iad.cidr, route_table_id = module.iad.node_route_table_id }
  accepter  = { vpc_id = module.sin.vpc_id, cidr = module.sin.cidr, route_table_id = module.sin.node_route_table_id, cloud_region = "ap-southeast-1" }
}

module "peering_fra_sin" {
  source    = "../../modules/aws/peering"
  providers = { aws.requester = aws.fra, aws.accepter = aws.sin }

  name      = "${var.cluster_name}-fra-sin"
  requester = { vpc_id = module.fra.vpc_id, cidr = module.fra.cidr, route_table_id = module.fra.node_route_table_id }
  accepter  = { vpc_id = module.sin.vpc_id, cidr = module.sin.cidr, route_table_id = module.sin.node_route_table_id, cloud_region = "ap-southeast-1" }
}

module "dns" {
  source    = "../../modules/aws/dns"
  providers = { aws = aws.iad } # Route 53 is global

  records        = module.config.dns_records
  public_zone_id = var.public_zone_id
  load_balancers = { iad = module.iad.load_balancer, fra = module.fra.load_balancer, sin = module.sin.load_balancer }
  vpcs = {
    iad = { vpc_id = module.iad.vpc_id, cloud_region = "us-east-1" }
    fra = { vpc_id = module.fra.vpc_id, cloud_region = "eu-central-1" }
    sin = { vpc_id = module.sin.vpc_id, cloud_region = "ap-southeast-1" }
  }
}
