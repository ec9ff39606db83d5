# Each environment's tfvars, planned against the mocked AWS provider: the values pass every
# variable validation and precondition and build a complete plan. Run once per file:
#   terraform test -test-directory=tests/environments -var-file=environments/dev.tfvars
# (no `variables` block here: the values come from the -var-file only).

mock_provider "aws" {
  source = "./tests/mocks"
}

run "plans_with_the_environment_values" {
  command = plan

  assert {
    condition     = length(aws_vpc.this) == (var.vpc_id == null ? 1 : 0) && length(aws_eks_cluster.this) == (var.create_cluster ? 1 : 0)
    error_message = "the created-vs-adopted switches must follow vpc_id and create_cluster"
  }

  assert {
    condition     = contains(keys(aws_eks_node_group.this), "batch") && aws_db_instance.this.storage_encrypted && aws_elasticache_replication_group.this.transit_encryption_enabled
    error_message = "every environment gets the spot node group, encrypted RDS and encrypted Redis"
  }
}
