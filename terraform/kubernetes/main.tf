# The training namespace and its service account (annotated with the IRSA role),
# plus the RBAC that lets Airflow's workers and triggerer run and watch
# KubernetesPodOperator pods there.

resource "kubernetes_namespace_v1" "training" {
  metadata {
    name = local.gpu_pool.namespace
  }
}

resource "kubernetes_service_account_v1" "training" {
  metadata {
    name      = local.gpu_pool.service_account
    namespace = kubernetes_namespace_v1.training.metadata[0].name

    annotations = {
      "eks.amazonaws.com/role-arn" = var.training_role_arn
    }
  }

  # Training pods need no Kubernetes API access.
  automount_service_account_token = false
}

resource "kubernetes_role_v1" "airflow_pod_launcher" {
  metadata {
    name      = "airflow-pod-launcher"
    namespace = kubernetes_namespace_v1.training.metadata[0].name
  }

  rule {
    api_groups = [""]
    resources  = ["pods"]
    verbs      = ["create", "delete", "get", "list", "patch", "watch"]
  }

  rule {
    api_groups = [""]
    resources  = ["pods/log"]
    verbs      = ["get", "list"]
  }

  rule {
    api_groups = [""]
    resources  = ["pods/exec"]
    verbs      = ["create", "get"]
  }

  rule {
    api_groups = [""]
    resources  = ["events"]
    verbs      = ["get", "list", "watch"]
  }
}

resource "kubernetes_role_binding_v1" "airflow_pod_launcher" {
  metadata {
    name      = "airflow-pod-launcher"
    namespace = kubernetes_namespace_v1.training.metadata[0].name
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.airflow_pod_launcher.metadata[0].name
  }

  dynamic "subject" {
    for_each = toset(var.airflow_service_accounts)

    content {
      kind      = "ServiceAccount"
      name      = subject.value
      namespace = var.airflow_namespace
    }
  }
}
