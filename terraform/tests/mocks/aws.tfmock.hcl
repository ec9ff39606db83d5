# The AWS provider's mocked values, shared by footprint.tftest.hcl and environments/ (Terraform reads
# *.tfmock.hcl files through mock_provider's `source`).

mock_data "aws_eks_cluster" {
  defaults = {
    name = "maestro-test"
    identity = [{
      oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE" }]
    }]
    vpc_config = [{ cluster_security_group_id = "sg-0adopted0cluster0" }]
  }
}

mock_data "aws_iam_openid_connect_provider" {
  defaults = {
    arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition = "aws"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}

mock_data "aws_availability_zones" {
  defaults = {
    names = ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"]
  }
}

mock_data "aws_iam_policy_document" {
  defaults = {
    json = "{}"
  }
}

mock_data "aws_secretsmanager_random_password" {
  defaults = {
    random_password = "MockedRandomPasswordMockedRandomPasswordMockedRandomPassword0123"
  }
}

mock_resource "aws_eks_cluster" {
  defaults = {
    arn = "arn:aws:eks:eu-west-1:123456789012:cluster/maestro-test"
    identity = [{
      oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/CREATED" }]
    }]
    vpc_config = { cluster_security_group_id = "sg-0created0cluster0" }
  }
}

mock_resource "aws_eks_node_group" {
  defaults = {
    resources = [{ autoscaling_groups = [{ name = "eks-asg" }] }]
  }
}

mock_resource "aws_launch_template" {
  defaults = {
    id             = "lt-0123456789abcdef0"
    latest_version = 1
  }
}

mock_resource "aws_iam_openid_connect_provider" {
  defaults = {
    arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/CREATED"
  }
}

mock_resource "aws_s3_bucket" {
  defaults = {
    arn = "arn:aws:s3:::mocked"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/mocked"
  }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn = "arn:aws:kms:eu-west-1:123456789012:key/mocked"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mocked"
  }
}

mock_resource "aws_elasticache_replication_group" {
  defaults = {
    primary_endpoint_address = "master.maestro-redis.mocked.euw1.cache.amazonaws.com"
  }
}

mock_resource "aws_db_instance" {
  defaults = {
    address            = "maestro-postgres.mocked.eu-west-1.rds.amazonaws.com"
    master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds-mocked", kms_key_id = "mocked", secret_status = "active" }]
  }
}
