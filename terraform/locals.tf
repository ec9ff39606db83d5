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

  oidc_issuer_url      = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
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

  tags = merge(
    {
      Project   = "maestro"
      ManagedBy = "terraform"
    },
    var.tags,
  )
}
