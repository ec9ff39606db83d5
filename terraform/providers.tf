provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# The cluster already exists (it is shared with other workloads); this stack
# only adds Maestro's GPU node group, identities and buckets to it.
data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_partition" "current" {}
