# Who may talk to whom: the internet reaches the load balancer on 443 only; the load balancer reaches the nodes'
# gateways; the nodes reach each other's QUIC port (every region's node subnets, over the peering) and the internet
# on 443 only (release download, Parameter Store, Session Manager). No SSH from anywhere: operators use Session
# Manager.

resource "aws_security_group" "lb" {
  name_prefix = "${local.name}-lb-"
  description = "Tern gateway load balancer: HTTPS from the internet"
  vpc_id      = aws_vpc.this.id

  ingress {
    description      = "HTTPS from clients"
    protocol         = "tcp"
    from_port        = 443
    to_port          = 443
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }

  egress {
    description = "To the nodes' gateways"
    protocol    = "tcp"
    from_port   = var.ports.gateway
    to_port     = var.ports.gateway
    cidr_blocks = values(var.layout.node_subnets)
  }

  tags = { Name = "${local.name}-lb" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "node" {
  name_prefix = "${local.name}-node-"
  description = "Tern nodes: gateway from the load balancer, QUIC between nodes"
  vpc_id      = aws_vpc.this.id

  ingress {
    description     = "Gateway from the load balancer"
    protocol        = "tcp"
    from_port       = var.ports.gateway
    to_port         = var.ports.gateway
    security_groups = [aws_security_group.lb.id]
  }

  ingress {
    description = "QUIC from the nodes of every region"
    protocol    = "udp"
    from_port   = var.ports.quic
    to_port     = var.ports.quic
    cidr_blocks = var.node_cidrs
  }

  egress {
    description = "QUIC to the nodes of every region"
    protocol    = "udp"
    from_port   = var.ports.quic
    to_port     = var.ports.quic
    cidr_blocks = var.node_cidrs
  }

  egress {
    description = "HTTPS out: release download, Parameter Store, Session Manager"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = { Name = "${local.name}-node" }

  lifecycle {
    create_before_destroy = true
  }
}
