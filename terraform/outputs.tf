output "gpu_node_group_name" {
  description = "EKS node group that runs the training pods."
  value       = aws_eks_node_group.gpu.node_group_name
}

output "gpu_node_role_arn" {
  description = "IAM role of the GPU nodes."
  value       = aws_iam_role.gpu_node.arn
}

output "training_role_arn" {
  description = "IRSA role of the training service account."
  value       = aws_iam_role.irsa["training"].arn
}

output "airflow_role_arn" {
  description = "IRSA role for the Airflow service accounts: put it in include/helm/values.yaml (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.irsa["airflow"].arn
}

output "bucket_names" {
  description = "Bucket name per role: landing, lake, mlflow."
  value       = { for key, bucket in aws_s3_bucket.this : key => bucket.id }
}

output "data_kms_key_arn" {
  description = "KMS key that encrypts the data buckets."
  value       = aws_kms_key.data.arn
}

output "maestro_env" {
  description = "Production values of the platform's settings (plugins/maestro_ml/settings.py), for the Helm values overlay."
  value = {
    MAESTRO_COMPUTE        = "kubernetes"
    MAESTRO_LANDING_URI    = "s3://${aws_s3_bucket.this["landing"].id}/events"
    MAESTRO_QUARANTINE_URI = "s3://${aws_s3_bucket.this["landing"].id}/quarantine"
    MAESTRO_LAKE_URI       = "s3://${aws_s3_bucket.this["lake"].id}/curated"
    MAESTRO_TRUTH_URI      = "s3://${aws_s3_bucket.this["lake"].id}/truth"
    MAESTRO_REPORTS_URI    = "s3://${aws_s3_bucket.this["lake"].id}/reports"
  }
}

output "airflow_remote_log_folder" {
  description = "config.logging.remote_base_log_folder in the Helm values."
  value       = "s3://${aws_s3_bucket.this["lake"].id}/airflow-logs"
}

output "mlflow_artifact_root" {
  description = "Artifact root for the MLflow server (mlflow server --default-artifact-root)."
  value       = "s3://${aws_s3_bucket.this["mlflow"].id}"
}
