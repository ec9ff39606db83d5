locals {
  # The one source of truth for the GPU node pool, shared with the Airflow side
  # (the KubernetesPodOperator pod spec and the Airflow pool read the same file).
  # Never copy its values into this directory: read them from local.gpu_pool.
  gpu_pool = jsondecode(file("${path.module}/../include/gpu_node_pool.json"))

  # Kubernetes spells taint effects "NoSchedule"; the EKS node group API wants "NO_SCHEDULE".
  eks_taint_effects = {
    NoSchedule       = "NO_SCHEDULE"
    PreferNoSchedule = "PREFER_NO_SCHEDULE"
    NoExecute        = "NO_EXECUTE"
  }
  gpu_taint_effect = local.eks_taint_effects[local.gpu_pool.taint.effect]

  oidc_issuer_url      = var.create_cluster ? aws_eks_cluster.this[0].identity[0].oidc[0].issuer : data.aws_eks_cluster.this[0].identity[0].oidc[0].issuer
  oidc_issuer_hostpath = trimprefix(local.oidc_issuer_url, "https://")

  buckets = {
    landing = "${var.name_prefix}-landing"
    lake    = "${var.name_prefix}-lake"
    mlflow  = "${var.name_prefix}-mlflow-artifacts"
  }

  # Who may assume which IRSA role, and which buckets each role reads and writes.
  irsa_workloads = {
    training = {
      namespace        = local.gpu_pool.namespace
      service_accounts = [local.gpu_pool.service_account]
      buckets          = ["lake", "mlflow"]
    }
    airflow = {
      namespace        = var.airflow_namespace
      service_accounts = var.airflow_service_accounts
      buckets          = ["landing", "lake", "mlflow"]
    }
  }

  # Every IRSA role and the service accounts that may assume it: the workloads above, and the
  # External Secrets Operator's SecretStore (include/helm/external-secrets.yaml), which reads the
  # Secrets Manager entries of secrets.tf and no bucket.
  irsa_roles = merge(local.irsa_workloads, {
    external-secrets = {
      namespace        = var.external_secrets_namespace
      service_accounts = [var.external_secrets_service_account]
    }
  })

  # The spot node group for batch work: batch pods select the label and tolerate the taint
  # (output batch_node_pool); nothing else is scheduled there.
  batch_pool = {
    labels = { "maestro.ai/workload" = "batch", "maestro.ai/capacity" = "spot" }
    taint  = { key = "maestro.ai/workload", value = "batch", effect = "NoSchedule" }
  }

  # The three logical databases on the one RDS instance; the instance is created with the
  # first, the other two by the one-off bootstrap in README.md (output database_bootstrap_sql).
  databases = {
    airflow        = "airflow"
    mlflow         = "mlflow"
    feast_registry = "feast_registry"
  }

  tags = merge(
    {
      Project   = "maestro"
      ManagedBy = "terraform"
    },
    var.tags,
  )
}
