provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}
