terraform {
  # No providers: this module only computes. `terraform test` (1.6) and cross-variable validation (1.9).
  required_version = ">= 1.9"
}
