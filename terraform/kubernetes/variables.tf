variable "region" {
  description = "AWS region of the EKS cluster."
  type        = string
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster."
  type        = string
}

variable "training_role_arn" {
  description = "IRSA role for the training service account: the training_role_arn output of the AWS stack in ../."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.training_role_arn))
    error_message = "training_role_arn must be an IAM role ARN."
  }
}

variable "airflow_namespace" {
  description = "Namespace of the Airflow Helm release."
  type        = string
  default     = "airflow"
}

variable "airflow_service_accounts" {
  description = "Airflow service accounts that launch and watch training pods (names as set in include/helm/values.yaml)."
  type        = list(string)
  default     = ["airflow-worker", "airflow-triggerer"]
}
