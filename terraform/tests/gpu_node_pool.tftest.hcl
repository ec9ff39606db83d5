# Offline checks (mocked AWS, no credentials): the node group, IRSA trust and
# buckets are built from include/gpu_node_pool.json as intended.
#   terraform init -backend=false && terraform test

mock_provider "aws" {
  mock_data "aws_eks_cluster" {
    defaults = {
      name = "maestro-test"
      identity = [{
        oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE" }]
      }]
      vpc_config = [{ cluster_security_group_id = "sg-0123456789abcdef0" }]
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

  mock_data "aws_secretsmanager_random_password" {
    defaults = {
      random_password = "MockedRandomPasswordMockedRandomPasswordMockedRandomPassword0123"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{}"
    }
  }

  mock_resource "aws_eks_node_group" {
    defaults = {
      resources = [{ autoscaling_groups = [{ name = "eks-gpu-asg" }] }]
    }
  }

  mock_resource "aws_launch_template" {
    defaults = {
      id             = "lt-0123456789abcdef0"
      latest_version = 1
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
}

variables {
  region       = "eu-west-1"
  cluster_name = "maestro-test"
  vpc_id       = "vpc-0123456789abcdef0"
  subnet_ids   = ["subnet-aaaa", "subnet-bbbb"]
  name_prefix  = "acme-maestro-test"
}

run "gpu_node_group_follows_the_json" {
  command = apply

  assert {
    condition     = aws_eks_node_group.gpu.node_group_name == local.gpu_pool.node_group_name
    error_message = "node group name does not come from gpu_node_pool.json"
  }

  assert {
    condition     = aws_eks_node_group.gpu.labels == tomap(local.gpu_pool.node_selector)
    error_message = "node labels differ from the pod nodeSelector in gpu_node_pool.json"
  }

  assert {
    condition = alltrue([for t in aws_eks_node_group.gpu.taint : (
      t.key == local.gpu_pool.taint.key && t.value == local.gpu_pool.taint.value && t.effect == "NO_SCHEDULE"
    )])
    error_message = "the taint is not the JSON's, with the effect in the EKS spelling"
  }

  assert {
    condition     = aws_eks_node_group.gpu.scaling_config[0].max_size == local.gpu_pool.scaling.max_size
    error_message = "max_size does not come from gpu_node_pool.json"
  }

  assert {
    condition     = length(aws_autoscaling_group_tag.gpu_node_template) == length(local.gpu_pool.node_selector) + 2
    error_message = "cluster-autoscaler scale-from-zero tags missing"
  }

  assert {
    condition     = toset(keys(aws_s3_bucket.this)) == toset(["landing", "lake", "mlflow"])
    error_message = "expected landing, lake and mlflow buckets"
  }

  assert {
    condition     = alltrue([for v in aws_s3_bucket_versioning.this : v.versioning_configuration[0].status == "Enabled"])
    error_message = "every bucket must be versioned"
  }

  assert {
    condition = alltrue([for b in aws_s3_bucket_public_access_block.this : (
      b.block_public_acls && b.block_public_policy && b.ignore_public_acls && b.restrict_public_buckets
    )])
    error_message = "every bucket must block public access"
  }

  assert {
    condition     = local.irsa_workloads.training.buckets == ["lake", "mlflow"]
    error_message = "the training role reaches exactly the lake and MLflow buckets"
  }

  assert {
    condition = anytrue([for c in data.aws_iam_policy_document.irsa_assume["training"].statement[0].condition : (
      c.test == "StringEquals" && endswith(c.variable, ":sub") &&
      tolist(c.values) == tolist(["system:serviceaccount:${local.gpu_pool.namespace}:${local.gpu_pool.service_account}"])
    )])
    error_message = "the training role must trust exactly the training service account of gpu_node_pool.json"
  }
}
