# IAM roles for service accounts (IRSA): the training pods, the Airflow workers and the
# External Secrets Operator's SecretStore each assume their own role through the cluster's
# OIDC provider.

locals {
  # A created cluster always gets its provider; an adopted one usually has it already.
  create_oidc_provider = var.create_oidc_provider || var.create_cluster
}

data "aws_iam_openid_connect_provider" "cluster" {
  count = local.create_oidc_provider ? 0 : 1
  url   = local.oidc_issuer_url
}

resource "aws_iam_openid_connect_provider" "cluster" {
  count          = local.create_oidc_provider ? 1 : 0
  url            = local.oidc_issuer_url
  client_id_list = ["sts.amazonaws.com"]
}

locals {
  oidc_provider_arn = local.create_oidc_provider ? aws_iam_openid_connect_provider.cluster[0].arn : data.aws_iam_openid_connect_provider.cluster[0].arn
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa_roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_hostpath}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer_hostpath}:sub"
      values   = [for sa in each.value.service_accounts : "system:serviceaccount:${each.value.namespace}:${sa}"]
    }
  }
}

data "aws_iam_policy_document" "irsa_data" {
  for_each = local.irsa_workloads

  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [for b in each.value.buckets : aws_s3_bucket.this[b].arn]
  }

  statement {
    sid = "ReadWriteObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [for b in each.value.buckets : "${aws_s3_bucket.this[b].arn}/*"]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [aws_kms_key.data.arn]
  }
}

resource "aws_iam_role" "irsa" {
  for_each = local.irsa_roles

  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume[each.key].json
}

resource "aws_iam_role_policy" "irsa_data" {
  for_each = local.irsa_workloads

  name   = "data-buckets"
  role   = aws_iam_role.irsa[each.key].id
  policy = data.aws_iam_policy_document.irsa_data[each.key].json
}

# The External Secrets Operator reads exactly the Secrets Manager entries of secrets.tf, and
# decrypts them with the platform key only through Secrets Manager.
data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid       = "ReadSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [for s in aws_secretsmanager_secret.this : s.arn]
  }

  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.platform.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "external_secrets" {
  name   = "secrets-manager-read"
  role   = aws_iam_role.irsa["external-secrets"].id
  policy = data.aws_iam_policy_document.external_secrets.json
}
