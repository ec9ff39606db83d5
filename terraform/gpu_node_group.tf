# GPU managed node group. Its name, instance types, labels and taint all come
# from include/gpu_node_pool.json so that the pod spec Airflow submits
# (nodeSelector + toleration) always matches the nodes this creates.

data "aws_iam_policy_document" "gpu_node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "gpu_node" {
  name               = "${var.name_prefix}-${local.gpu_pool.node_group_name}-node"
  assume_role_policy = data.aws_iam_policy_document.gpu_node_assume.json
}

resource "aws_iam_role_policy_attachment" "gpu_node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
  ])

  role       = aws_iam_role.gpu_node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

resource "aws_launch_template" "gpu" {
  name_prefix            = "${var.name_prefix}-${local.gpu_pool.node_group_name}-"
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
      volume_size           = local.gpu_pool.disk_size_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name_prefix}-${local.gpu_pool.node_group_name}" })
  }
}

resource "aws_eks_node_group" "gpu" {
  cluster_name    = local.cluster_name
  node_group_name = local.gpu_pool.node_group_name
  node_role_arn   = aws_iam_role.gpu_node.arn
  subnet_ids      = local.gpu_subnet_ids

  ami_type       = local.gpu_pool.ami_type
  capacity_type  = local.gpu_pool.capacity_type
  instance_types = local.gpu_pool.instance_types

  labels = local.gpu_pool.node_selector

  taint {
    key    = local.gpu_pool.taint.key
    value  = local.gpu_pool.taint.value
    effect = local.gpu_taint_effect
  }

  scaling_config {
    min_size     = local.gpu_pool.scaling.min_size
    desired_size = local.gpu_pool.scaling.desired_size
    max_size     = local.gpu_pool.scaling.max_size
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.gpu.id
    version = aws_launch_template.gpu.latest_version
  }

  lifecycle {
    # The cluster autoscaler owns the live size.
    ignore_changes = [scaling_config[0].desired_size]

    precondition {
      condition     = local.gpu_pool.airflow_pool_slots * local.gpu_pool.gpus_per_pod <= local.gpu_pool.scaling.max_size * local.gpu_pool.gpus_per_node
      error_message = "gpu_node_pool.json: the Airflow pool admits more GPU pods than the node group can ever hold."
    }
  }

  depends_on = [aws_iam_role_policy_attachment.gpu_node]
}

# Scale from zero: with no node running, the cluster autoscaler learns the
# labels, taint and GPU count of a would-be node from these ASG tags.
resource "aws_autoscaling_group_tag" "gpu_node_template" {
  for_each = merge(
    { for key, value in local.gpu_pool.node_selector : "k8s.io/cluster-autoscaler/node-template/label/${key}" => value },
    {
      "k8s.io/cluster-autoscaler/node-template/taint/${local.gpu_pool.taint.key}"             = "${local.gpu_pool.taint.value}:${local.gpu_pool.taint.effect}"
      "k8s.io/cluster-autoscaler/node-template/resources/${local.gpu_pool.gpu_resource_name}" = tostring(local.gpu_pool.gpus_per_node)
    },
  )

  autoscaling_group_name = aws_eks_node_group.gpu.resources[0].autoscaling_groups[0].name

  tag {
    key                 = each.key
    value               = each.value
    propagate_at_launch = false
  }
}
