# The EKS cluster: adopted by name (create_cluster = false, the default: it is shared with other
# workloads), or created here with its control-plane role, encrypted Kubernetes secrets and
# control-plane logs. Either way this stack adds its managed node groups to it: a general one
# (create_general_node_group; a shared adopted cluster may already have one), a spot one for
# batch work, and the GPU one (gpu_node_group.tf).

data "aws_eks_cluster" "this" {
  count = var.create_cluster ? 0 : 1

  name = var.cluster_name
}

locals {
  cluster_name = var.create_cluster ? aws_eks_cluster.this[0].name : data.aws_eks_cluster.this[0].name

  # The cluster security group EKS attaches to the control plane and to managed nodes that use
  # no custom security groups (all node groups here): RDS and ElastiCache admit only it.
  cluster_security_group_id = (var.create_cluster
    ? aws_eks_cluster.this[0].vpc_config[0].cluster_security_group_id
    : data.aws_eks_cluster.this[0].vpc_config[0].cluster_security_group_id
  )

  # Node groups this stack adds besides the GPU one.
  node_groups = merge(
    var.create_general_node_group ? {
      general = {
        capacity_type = "ON_DEMAND"
        config        = var.general_node_group
        labels        = { "maestro.ai/workload" = "general" }
        taints        = []
      }
    } : {},
    {
      batch = {
        capacity_type = "SPOT"
        config        = var.batch_node_group
        labels        = local.batch_pool.labels
        taints        = [local.batch_pool.taint]
      }
    },
  )

  # Scale-from-zero hints for the cluster autoscaler on the spot node group.
  batch_node_template_tags = merge(
    { for key, value in local.batch_pool.labels : "k8s.io/cluster-autoscaler/node-template/label/${key}" => value },
    { "k8s.io/cluster-autoscaler/node-template/taint/${local.batch_pool.taint.key}" = "${local.batch_pool.taint.value}:${local.batch_pool.taint.effect}" },
  )
}

# --- control plane (created cluster only) --------------------------------------------------------

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  count = var.create_cluster ? 1 : 0

  name               = "${var.name_prefix}-eks-cluster"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json
}

resource "aws_iam_role_policy_attachment" "cluster" {
  count = var.create_cluster ? 1 : 0

  role       = aws_iam_role.cluster[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

# EKS writes its control-plane logs here; created first so that retention and KMS apply.
resource "aws_cloudwatch_log_group" "cluster" {
  count = var.create_cluster ? 1 : 0

  name              = "/aws/eks/${var.cluster_name}/cluster"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = aws_kms_key.platform.arn
}

resource "aws_eks_cluster" "this" {
  count = var.create_cluster ? 1 : 0

  #checkov:skip=CKV_AWS_339:checkov 3.1.47's list of supported EKS versions ends before today's supported ones (1.30+); var.cluster_version pins a version in EKS standard support.

  name     = var.cluster_name
  version  = var.cluster_version
  role_arn = aws_iam_role.cluster[0].arn

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  access_config {
    authentication_mode                         = "API_AND_CONFIG_MAP"
    bootstrap_cluster_creator_admin_permissions = true
  }

  vpc_config {
    subnet_ids              = local.private_subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = var.cluster_endpoint_public_access
    public_access_cidrs     = var.cluster_endpoint_public_access ? var.cluster_endpoint_public_access_cidrs : null
  }

  encryption_config {
    resources = ["secrets"]

    provider {
      key_arn = aws_kms_key.platform.arn
    }
  }

  lifecycle {
    precondition {
      condition     = !var.cluster_endpoint_public_access || length(var.cluster_endpoint_public_access_cidrs) > 0
      error_message = "A public cluster endpoint needs cluster_endpoint_public_access_cidrs."
    }
  }

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.cluster]
}

# --- general and spot (batch) node groups ------------------------------------------------------------

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.name_prefix}-eks-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
  ])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

resource "aws_launch_template" "node" {
  for_each = local.node_groups

  name_prefix            = "${var.name_prefix}-${each.key}-"
  update_default_version = true

  # IMDSv2 only, one hop: pods cannot borrow the node role and must use IRSA.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = each.value.config.disk_size_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name_prefix}-${each.key}" })
  }
}

resource "aws_eks_node_group" "this" {
  for_each = local.node_groups

  cluster_name    = local.cluster_name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = local.private_subnet_ids

  ami_type       = "AL2023_x86_64_STANDARD"
  capacity_type  = each.value.capacity_type
  instance_types = each.value.config.instance_types

  labels = each.value.labels

  dynamic "taint" {
    for_each = each.value.taints

    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = local.eks_taint_effects[taint.value.effect]
    }
  }

  scaling_config {
    min_size     = each.value.config.min_size
    desired_size = each.value.config.desired_size
    max_size     = each.value.config.max_size
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  lifecycle {
    # The cluster autoscaler owns the live size.
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

resource "aws_autoscaling_group_tag" "batch_node_template" {
  for_each = local.batch_node_template_tags

  autoscaling_group_name = aws_eks_node_group.this["batch"].resources[0].autoscaling_groups[0].name

  tag {
    key                 = each.key
    value               = each.value
    propagate_at_launch = false
  }
}
