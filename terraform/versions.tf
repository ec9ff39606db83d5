terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7.0"
    }
  }

  # Partial configuration: the bucket, key and region come from
  # `terraform init -backend-config=backend.hcl` (see README.md), so no
  # environment's state location is baked into the code.
  backend "s3" {}
}
