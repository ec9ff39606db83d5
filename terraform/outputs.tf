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

output "external_secrets_role_arn" {
  description = "IRSA role of the External Secrets Operator's service account: put it in include/helm/external-secrets.yaml (eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.irsa["external-secrets"].arn
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

# --- network and cluster ---------------------------------------------------------------------------

output "vpc_id" {
  description = "VPC of the footprint (created or adopted)."
  value       = local.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets of the nodes, RDS and ElastiCache (created or adopted)."
  value       = local.private_subnet_ids
}

output "cluster_name" {
  description = "EKS cluster (created or adopted)."
  value       = local.cluster_name
}

output "cluster_security_group_id" {
  description = "The cluster security group: the only source RDS and ElastiCache admit."
  value       = local.cluster_security_group_id
}

output "node_group_names" {
  description = "Managed node groups this stack adds: general (on-demand), batch (spot) and the GPU one."
  value       = concat([for ng in aws_eks_node_group.this : ng.node_group_name], [aws_eks_node_group.gpu.node_group_name])
}

output "batch_node_pool" {
  description = "How a batch pod lands on the spot node group: nodeSelector labels and the toleration (Kubernetes spelling)."
  value = {
    node_selector = local.batch_pool.labels
    toleration    = merge(local.batch_pool.taint, { operator = "Equal" })
  }
}

# --- RDS ------------------------------------------------------------------------------------------------

output "db_address" {
  description = "RDS PostgreSQL host name."
  value       = aws_db_instance.this.address
}

output "db_port" {
  description = "RDS PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "db_master_user_secret_arn" {
  description = "Secrets Manager secret, managed and rotated by RDS, with the master user's password (bootstrap only)."
  value       = one(aws_db_instance.this.master_user_secret[*].secret_arn)
}

output "databases" {
  description = "The logical databases on the RDS instance: airflow (created with the instance), mlflow and feast_registry (created by database_bootstrap_sql)."
  value       = local.databases
}

output "database_bootstrap_sql" {
  description = "Run once as the master user (README.md): creates the MLflow and Feast registry databases and one owner role per database; passwords are set by the operator, then stored in the out-of-band secrets."
  value = join("\n", concat(
    [for key, db in local.databases : "CREATE ROLE ${db} LOGIN;" if key != "feast_registry"],
    ["CREATE ROLE feast LOGIN;"],
    [for key, db in local.databases : "CREATE DATABASE ${db} OWNER ${key == "feast_registry" ? "feast" : db};" if key != "airflow"],
    ["ALTER DATABASE ${local.databases.airflow} OWNER TO ${local.databases.airflow};"],
  ))
}

# --- Redis, ECR, secrets ---------------------------------------------------------------------------------

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint (TLS, auth token in the redis-auth-token secret)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "ecr_repository_urls" {
  description = "ECR repository URL per image (airflow, training): images.airflow.repository and MAESTRO_TRAINING_IMAGE in the Helm values overlay."
  value       = { for key, repo in aws_ecr_repository.this : key => repo.repository_url }
}

output "secrets" {
  description = "Secrets Manager entry per secret: its ARN, the Kubernetes Secret/key External Secrets syncs it to, and where its value comes from."
  value = {
    for key, s in aws_secretsmanager_secret.this : key => {
      arn        = s.arn
      name       = s.name
      k8s_secret = local.secrets[key].k8s_secret
      k8s_key    = local.secrets[key].k8s_key
      source     = local.secrets[key].source
    }
  }
}

output "platform_kms_key_arn" {
  description = "KMS key of RDS, ElastiCache, Secrets Manager, ECR, EKS secrets and the log groups."
  value       = aws_kms_key.platform.arn
}
