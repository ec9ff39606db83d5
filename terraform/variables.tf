# --- common -------------------------------------------------------------------------------------

variable "region" {
  description = "AWS region of the whole footprint (VPC, EKS, RDS, ElastiCache, ECR, buckets)."
  type        = string
}

variable "name_prefix" {
  description = "Globally unique prefix for bucket, IAM, database and secret names, e.g. \"acme-maestro-prod\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-40 characters of lower-case letters, digits and hyphens (S3 bucket rules)."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- network: created, or adopted when vpc_id is set ---------------------------------------------

variable "vpc_id" {
  description = "Existing VPC to adopt. null (the default): this stack creates the VPC, its subnets, NAT gateways and flow logs. Set: nothing network-related is created and subnet_ids must list its private subnets."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id != null || var.create_cluster
    error_message = "An adopted EKS cluster (create_cluster = false) lives in an existing VPC: set vpc_id and subnet_ids to that VPC's."
  }

  validation {
    condition     = (var.vpc_id == null) == (length(var.subnet_ids) == 0)
    error_message = "Set vpc_id and subnet_ids together (adopt a VPC), or neither (create one)."
  }
}

variable "subnet_ids" {
  description = "Private subnets of the adopted VPC (vpc_id), in at least two AZs: node groups, RDS and ElastiCache go there. Leave empty when the VPC is created."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.subnet_ids) == 0 || length(var.subnet_ids) >= 2
    error_message = "Give at least two private subnets (RDS and ElastiCache subnet groups need two AZs)."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the created VPC (ignored when vpc_id is set). Each AZ gets a /20 private and a /24 public subnet carved from it."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr must be an IPv4 CIDR of /16 or larger."
  }
}

variable "availability_zones" {
  description = "AZs of the created VPC. Empty: the first az_count AZs the region offers."
  type        = list(string)
  default     = []
}

variable "az_count" {
  description = "How many AZs the created VPC spans when availability_zones is empty."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be 2 to 6 (RDS and ElastiCache need two AZs)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole created VPC (cheaper, for dev) instead of one per AZ."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Days the created VPC's flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}

# --- EKS: created, or adopted by name --------------------------------------------------------------

variable "cluster_name" {
  description = "Name of the EKS cluster: the existing one to adopt (create_cluster = false), or the one to create."
  type        = string
}

variable "create_cluster" {
  description = "Create the EKS cluster (control plane, its KMS-encrypted secrets and control-plane logs). false (the default): adopt the existing cluster named cluster_name, which then must sit in the adopted vpc_id."
  type        = bool
  default     = false
}

variable "cluster_version" {
  description = "Kubernetes version of a created cluster."
  type        = string
  default     = "1.32"
}

variable "cluster_endpoint_public_access" {
  description = "Expose a created cluster's API endpoint publicly (restricted to cluster_endpoint_public_access_cidrs). The private endpoint is always on."
  type        = bool
  default     = false
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach a public cluster endpoint (never 0.0.0.0/0)."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.cluster_endpoint_public_access_cidrs, "0.0.0.0/0")
    error_message = "Do not open the cluster endpoint to the whole internet."
  }
}

variable "create_oidc_provider" {
  description = "Create the cluster's IAM OIDC provider for an adopted cluster. Leave false when it already has one (the usual case); a created cluster always gets one."
  type        = bool
  default     = false
}

variable "gpu_subnet_ids" {
  description = "Subnets for the GPU node group (the AZs that offer its instance types). Empty: every private subnet."
  type        = list(string)
  default     = []
}

variable "create_general_node_group" {
  description = "Add the general on-demand node group. Set false for an adopted cluster that already runs general-purpose nodes."
  type        = bool
  default     = true
}

variable "general_node_group" {
  description = "The general managed node group (Airflow, MLflow, system pods): on-demand instances."
  type = object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_size_gib  = number
  })
  default = {
    instance_types = ["m6i.xlarge", "m6a.xlarge"]
    min_size       = 2
    desired_size   = 2
    max_size       = 6
    disk_size_gib  = 50
  }

  validation {
    condition     = var.general_node_group.min_size >= 1 && var.general_node_group.min_size <= var.general_node_group.max_size
    error_message = "The general node group needs min_size >= 1 and <= max_size."
  }
}

variable "batch_node_group" {
  description = "The spot node group for batch work (feature builds, scoring): tainted, so only pods that tolerate the batch taint and select its label land there."
  type = object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_size_gib  = number
  })
  default = {
    instance_types = ["m6i.2xlarge", "m6a.2xlarge", "m5.2xlarge", "m5a.2xlarge"]
    min_size       = 0
    desired_size   = 0
    max_size       = 10
    disk_size_gib  = 100
  }

  validation {
    condition     = length(var.batch_node_group.instance_types) >= 2
    error_message = "Give the spot node group several instance types, so spot capacity can be found."
  }
}

# --- Airflow identities and data buckets ---------------------------------------------------------

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

variable "external_secrets_namespace" {
  description = "Namespace of the External Secrets Operator's SecretStore and its service account (include/helm/external-secrets.yaml): the Airflow release namespace."
  type        = string
  default     = "airflow"
}

variable "external_secrets_service_account" {
  description = "Service account the SecretStore reads Secrets Manager with (name as set in include/helm/external-secrets.yaml); it assumes the external-secrets IRSA role."
  type        = string
  default     = "external-secrets-airflow"
}

variable "noncurrent_version_retention_days" {
  description = "Days to keep overwritten or deleted object versions before they expire."
  type        = number
  default     = 90
}

variable "access_log_retention_days" {
  description = "Days to keep the S3 server access logs of the data buckets."
  type        = number
  default     = 365
}

# --- RDS PostgreSQL ---------------------------------------------------------------------------------

variable "db_engine_version" {
  description = "PostgreSQL major.minor version of the RDS instance."
  type        = string
  default     = "16.8"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "db_allocated_storage_gib" {
  description = "Initial RDS storage (GiB)."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling (GiB)."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "Run RDS with a synchronous standby in a second AZ."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "Keep 7 to 35 days of RDS backups."
  }
}

variable "db_deletion_protection" {
  description = "Refuse to delete the RDS instance (turn off deliberately before a destroy)."
  type        = bool
  default     = true
}

variable "db_monitoring_interval" {
  description = "Seconds between RDS enhanced-monitoring samples (1, 5, 10, 15, 30 or 60)."
  type        = number
  default     = 60

  validation {
    condition     = contains([1, 5, 10, 15, 30, 60], var.db_monitoring_interval)
    error_message = "Enhanced monitoring interval must be 1, 5, 10, 15, 30 or 60."
  }
}

# --- ElastiCache Redis ---------------------------------------------------------------------------

variable "redis_engine_version" {
  description = "Redis OSS engine version of the replication group."
  type        = string
  default     = "7.1"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_num_cache_clusters" {
  description = "Nodes in the replication group: a primary and its replicas, spread over the subnets' AZs (Multi-AZ with automatic failover, so at least 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_num_cache_clusters >= 2 && var.redis_num_cache_clusters <= 6
    error_message = "redis_num_cache_clusters must be 2 to 6 (a primary and a replica in another AZ, at least)."
  }
}

variable "redis_snapshot_retention_days" {
  description = "Days of automatic Redis snapshots."
  type        = number
  default     = 7
}

# --- ECR ---------------------------------------------------------------------------------------------

variable "ecr_keep_tagged_images" {
  description = "Tagged images kept per ECR repository; older ones expire."
  type        = number
  default     = 50
}

variable "secret_recovery_window_days" {
  description = "Days a deleted Secrets Manager secret can still be restored."
  type        = number
  default     = 30
}
