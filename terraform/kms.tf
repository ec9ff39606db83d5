# Customer-managed KMS keys. `data` (s3.tf) encrypts the data buckets; `platform` encrypts
# everything else at rest: RDS (storage, Performance Insights, its managed master secret),
# ElastiCache, Secrets Manager, ECR, the created cluster's Kubernetes secrets and the
# CloudWatch log groups (VPC flow logs, EKS control plane logs).

locals {
  account_root_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

# Key administration stays with the account (IAM policies then grant use); CloudWatch Logs,
# which cannot use IAM, is granted use of the platform key for this account's log groups only.
data "aws_iam_policy_document" "kms" {
  for_each = toset(["data", "platform"])

  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" means this key only; administration is limited to the account root, which delegates through IAM.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" means this key only; write access is limited to the account root, which delegates through IAM.
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" means this key only; it cannot name the key's own ARN before the key exists.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root_arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "platform" ? [1] : []

    content {
      sid       = "CloudWatchLogsEncrypt"
      actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["logs.${var.region}.amazonaws.com"]
      }

      condition {
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
      }
    }
  }
}

resource "aws_kms_key" "platform" {
  description             = "Maestro ML platform: RDS, ElastiCache, Secrets Manager, ECR, EKS, logs (${var.name_prefix})"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms["platform"].json
}

resource "aws_kms_alias" "platform" {
  name          = "alias/${var.name_prefix}-platform"
  target_key_id = aws_kms_key.platform.key_id
}
