terraform {
  # Only Terraform's built-in terraform_data: `terraform init` needs no provider and works offline.
  required_version = ">= 1.9"
}
