output "training_namespace" {
  description = "Namespace of the training pods."
  value       = kubernetes_namespace_v1.training.metadata[0].name
}

output "training_service_account" {
  description = "Service account of the training pods."
  value       = kubernetes_service_account_v1.training.metadata[0].name
}
