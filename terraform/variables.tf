variable "region" {
  description = "AWS region of the EKS cluster and the buckets."
  type        = string
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster that runs Airflow and the training pods."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the GPU node group (pick the AZs that offer the GPU instance types)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "Give at least one subnet for the GPU node group."
  }
}

variable "name_prefix" {
  description = "Globally unique prefix for bucket and IAM names, e.g. \"acme-maestro-prod\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-40 characters of lower-case letters, digits and hyphens (S3 bucket rules)."
  }
}

variable "create_oidc_provider" {
  description = "Create the cluster's IAM OIDC provider. Leave false when the cluster already has one (the usual case)."
  type        = bool
  default     = false
}

variable "airflow_namespace" {
  description = "Namespace of the Airflow Helm release."
  type        = string
  default     = "airflow"
}

variable "airflow_service_accounts" {
  description = "Airflow service accounts that use the data buckets: tasks, triggers, and the api-server reading task logs (names as set in include/helm/values.yaml)."
  type        = list(string)
  default     = ["airflow-worker", "airflow-triggerer", "airflow-api-server"]
}

variable "noncurrent_version_retention_days" {
  description = "Days to keep overwritten or deleted object versions before they expire."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
