# Offline checks (mocked AWS, no credentials) of the whole footprint: the created-vs-adopted
# switches of the VPC and the EKS cluster, the node groups, RDS, ElastiCache, ECR and Secrets
# Manager, and the External Secrets IRSA role.
#   terraform init -backend=false && terraform test

mock_provider "aws" {
  source = "./tests/mocks"
}

# Defaults: today's layout, an existing cluster in an existing VPC.
variables {
  region       = "eu-west-1"
  cluster_name = "maestro-test"
  vpc_id       = "vpc-0123456789abcdef0"
  subnet_ids   = ["subnet-aaaa", "subnet-bbbb", "subnet-cccc"]
  name_prefix  = "acme-maestro-test"
}

# --- network and cluster: adopted ---------------------------------------------------------------

run "adopted_vpc_and_cluster_create_nothing_of_theirs" {
  command = apply

  assert {
    condition = (length(aws_vpc.this) + length(aws_subnet.private) + length(aws_subnet.public) + length(aws_nat_gateway.this) +
    length(aws_internet_gateway.this) + length(aws_flow_log.this) + length(aws_default_security_group.this)) == 0
    error_message = "an adopted VPC (vpc_id set) must not create any network resource"
  }

  assert {
    condition     = length(aws_eks_cluster.this) == 0 && length(aws_iam_role.cluster) == 0 && length(aws_iam_openid_connect_provider.cluster) == 0
    error_message = "an adopted cluster must not create a control plane or an OIDC provider"
  }

  assert {
    condition     = local.vpc_id == var.vpc_id && local.private_subnet_ids == var.subnet_ids
    error_message = "the adopted VPC and subnets must be used as given"
  }

  assert {
    condition     = aws_db_subnet_group.this.subnet_ids == toset(var.subnet_ids) && aws_elasticache_subnet_group.this.subnet_ids == toset(var.subnet_ids)
    error_message = "RDS and ElastiCache must sit in the adopted private subnets"
  }

  assert {
    condition     = aws_eks_node_group.gpu.subnet_ids == toset(var.subnet_ids) && aws_eks_node_group.gpu.cluster_name == "maestro-test"
    error_message = "the GPU node group joins the adopted cluster in the private subnets"
  }

  assert {
    condition     = aws_security_group.rds.vpc_id == var.vpc_id && aws_security_group.redis.vpc_id == var.vpc_id
    error_message = "the data-store security groups belong to the adopted VPC"
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.rds_from_cluster.referenced_security_group_id == "sg-0adopted0cluster0"
    error_message = "RDS must admit the adopted cluster's security group"
  }

  assert {
    condition     = toset(keys(aws_eks_node_group.this)) == toset(["general", "batch"])
    error_message = "a general and a spot (batch) node group are added to the adopted cluster too"
  }
}

run "gpu_subnets_can_be_narrowed" {
  command = plan

  variables {
    gpu_subnet_ids            = ["subnet-cccc"]
    create_general_node_group = false
  }

  assert {
    condition     = aws_eks_node_group.gpu.subnet_ids == toset(["subnet-cccc"])
    error_message = "gpu_subnet_ids must restrict the GPU node group"
  }

  assert {
    condition     = toset(keys(aws_eks_node_group.this)) == toset(["batch"])
    error_message = "create_general_node_group = false must leave only the batch node group"
  }
}

run "an_adopted_cluster_needs_an_adopted_vpc" {
  command = plan

  variables {
    vpc_id     = null
    subnet_ids = []
  }

  expect_failures = [var.vpc_id]
}

run "vpc_id_and_subnet_ids_go_together" {
  command = plan

  variables {
    create_cluster = true
    vpc_id         = null
  }

  expect_failures = [var.vpc_id]
}

# --- network and cluster: created ---------------------------------------------------------------

run "created_vpc_and_cluster" {
  command = apply

  variables {
    create_cluster = true
    vpc_id         = null
    subnet_ids     = []
  }

  assert {
    condition     = length(aws_vpc.this) == 1 && aws_vpc.this[0].cidr_block == "10.40.0.0/16"
    error_message = "vpc_id = null must create the VPC"
  }

  assert {
    condition     = length(aws_subnet.private) == 3 && length(aws_subnet.public) == 3
    error_message = "one private and one public subnet per AZ (az_count = 3)"
  }

  assert {
    condition     = toset([for s in aws_subnet.private : s.availability_zone]) == toset(["eu-west-1a", "eu-west-1b", "eu-west-1c"])
    error_message = "the private subnets must spread over the first three AZs"
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : !s.map_public_ip_on_launch])
    error_message = "no public IP on launch, even in public subnets"
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 3 && length(aws_route.private_nat) == 3
    error_message = "one NAT gateway per AZ by default, each private route table through one"
  }

  assert {
    condition     = length(aws_flow_log.this) == 1 && aws_flow_log.this[0].traffic_type == "ALL"
    error_message = "the created VPC must log all its traffic"
  }

  assert {
    condition     = aws_cloudwatch_log_group.flow_logs[0].kms_key_id == aws_kms_key.platform.arn && aws_cloudwatch_log_group.flow_logs[0].retention_in_days >= 365
    error_message = "flow logs must be KMS-encrypted and kept a year"
  }

  assert {
    condition     = length(aws_eks_cluster.this) == 1 && aws_eks_cluster.this[0].name == "maestro-test"
    error_message = "create_cluster = true must create the cluster"
  }

  assert {
    condition = (aws_eks_cluster.this[0].vpc_config[0].endpoint_private_access && !aws_eks_cluster.this[0].vpc_config[0].endpoint_public_access &&
    aws_eks_cluster.this[0].vpc_config[0].subnet_ids == toset(local.private_subnet_ids))
    error_message = "a created cluster has a private endpoint only, in the private subnets"
  }

  assert {
    condition = alltrue([for e in aws_eks_cluster.this[0].encryption_config : (
      e.provider[0].key_arn == aws_kms_key.platform.arn && contains(e.resources, "secrets")
    )])
    error_message = "a created cluster encrypts Kubernetes secrets with the platform key"
  }

  assert {
    condition     = length(aws_eks_cluster.this[0].enabled_cluster_log_types) == 5
    error_message = "all control-plane log types must be on"
  }

  assert {
    condition     = length(aws_iam_openid_connect_provider.cluster) == 1 && length(data.aws_iam_openid_connect_provider.cluster) == 0
    error_message = "a created cluster gets its OIDC provider"
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.redis_from_cluster.referenced_security_group_id == "sg-0created0cluster0"
    error_message = "Redis must admit the created cluster's security group"
  }

  assert {
    condition     = aws_eks_node_group.this["general"].capacity_type == "ON_DEMAND" && aws_eks_node_group.this["general"].cluster_name == "maestro-test"
    error_message = "the general node group is on-demand, in the created cluster"
  }

  assert {
    condition     = aws_eks_node_group.this["batch"].capacity_type == "SPOT"
    error_message = "the batch node group runs on spot capacity"
  }

  assert {
    condition     = aws_eks_node_group.this["batch"].labels == tomap(local.batch_pool.labels)
    error_message = "the batch node group carries the labels batch pods select"
  }

  assert {
    condition = alltrue([for t in aws_eks_node_group.this["batch"].taint : (
      t.key == local.batch_pool.taint.key && t.value == local.batch_pool.taint.value && t.effect == "NO_SCHEDULE"
    )]) && length(aws_eks_node_group.this["batch"].taint) == 1
    error_message = "the batch node group is tainted so that only batch pods land there"
  }

  assert {
    condition     = length(aws_eks_node_group.this["general"].taint) == 0
    error_message = "the general node group takes any pod"
  }

  assert {
    condition     = length(aws_autoscaling_group_tag.batch_node_template) == length(local.batch_pool.labels) + 1
    error_message = "the spot node group scales from zero: node-template tags missing"
  }
}

run "single_nat_gateway" {
  command = apply

  variables {
    create_cluster     = true
    vpc_id             = null
    subnet_ids         = []
    single_nat_gateway = true
    az_count           = 2
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_subnet.private) == 2
    error_message = "single_nat_gateway must create one NAT gateway for all AZs"
  }

  assert {
    condition     = length(toset([for r in aws_route.private_nat : r.nat_gateway_id])) == 1
    error_message = "every private route table must use the single NAT gateway"
  }
}

# --- RDS ------------------------------------------------------------------------------------------------

run "rds_is_encrypted_private_backed_up_and_protected" {
  command = apply

  assert {
    condition     = aws_db_instance.this.storage_encrypted && aws_db_instance.this.kms_key_id == aws_kms_key.platform.arn
    error_message = "RDS storage must be encrypted with the platform KMS key"
  }

  assert {
    condition     = !aws_db_instance.this.publicly_accessible
    error_message = "RDS must not be publicly accessible"
  }

  assert {
    condition     = aws_db_instance.this.deletion_protection && !aws_db_instance.this.skip_final_snapshot
    error_message = "RDS must have deletion protection and a final snapshot"
  }

  assert {
    condition     = aws_db_instance.this.backup_retention_period >= 7 && aws_db_instance.this.copy_tags_to_snapshot
    error_message = "RDS must keep at least a week of backups"
  }

  assert {
    condition     = aws_db_instance.this.iam_database_authentication_enabled && aws_db_instance.this.manage_master_user_password
    error_message = "IAM auth on, and the master password managed by RDS (never in Terraform)"
  }

  assert {
    condition     = aws_db_instance.this.performance_insights_enabled && aws_db_instance.this.performance_insights_kms_key_id == aws_kms_key.platform.arn && aws_db_instance.this.monitoring_interval > 0
    error_message = "Performance Insights (KMS) and enhanced monitoring must be on"
  }

  assert {
    condition     = aws_db_instance.this.multi_az && aws_db_instance.this.engine == "postgres"
    error_message = "PostgreSQL, Multi-AZ by default"
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.rds_from_cluster.cidr_ipv4 == null && aws_vpc_security_group_ingress_rule.rds_from_cluster.from_port == 5432
    error_message = "RDS admits the cluster security group only, never a CIDR"
  }

  assert {
    condition     = aws_db_instance.this.db_name == "airflow" && output.databases == { airflow = "airflow", mlflow = "mlflow", feast_registry = "feast_registry" }
    error_message = "one database each for Airflow, MLflow and the Feast registry"
  }

  assert {
    condition     = strcontains(output.database_bootstrap_sql, "CREATE DATABASE mlflow") && strcontains(output.database_bootstrap_sql, "CREATE DATABASE feast_registry")
    error_message = "the bootstrap SQL must create the MLflow and Feast registry databases"
  }
}

run "backups_cannot_be_turned_off" {
  command = plan

  variables {
    db_backup_retention_days = 0
  }

  expect_failures = [var.db_backup_retention_days]
}

# --- ElastiCache ------------------------------------------------------------------------------------

run "redis_is_encrypted_authenticated_and_multi_az" {
  command = apply

  assert {
    condition     = aws_elasticache_replication_group.this.transit_encryption_enabled && aws_elasticache_replication_group.this.at_rest_encryption_enabled
    error_message = "Redis must be encrypted in transit and at rest"
  }

  assert {
    condition     = aws_elasticache_replication_group.this.kms_key_id == aws_kms_key.platform.arn
    error_message = "Redis at-rest encryption uses the platform KMS key"
  }

  assert {
    condition     = nonsensitive(aws_elasticache_replication_group.this.auth_token == aws_secretsmanager_secret_version.redis_auth_token.secret_string && length(aws_elasticache_replication_group.this.auth_token) >= 32)
    error_message = "the auth token must come from the redis-auth-token secret (GetRandomPassword), never inline"
  }

  assert {
    condition     = aws_elasticache_replication_group.this.automatic_failover_enabled && aws_elasticache_replication_group.this.multi_az_enabled && aws_elasticache_replication_group.this.num_cache_clusters >= 2
    error_message = "Redis runs a replica in another AZ with automatic failover"
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.redis_from_cluster.cidr_ipv4 == null && aws_vpc_security_group_ingress_rule.redis_from_cluster.from_port == 6379
    error_message = "Redis admits the cluster security group only, never a CIDR"
  }
}

run "redis_needs_a_replica" {
  command = plan

  variables {
    redis_num_cache_clusters = 1
  }

  expect_failures = [var.redis_num_cache_clusters]
}

# --- ECR ----------------------------------------------------------------------------------------------

run "ecr_repositories_are_immutable_scanned_and_encrypted" {
  command = apply

  assert {
    condition     = toset(keys(aws_ecr_repository.this)) == toset(["airflow", "training"])
    error_message = "one repository each for the Airflow and the training image"
  }

  assert {
    condition     = alltrue([for r in aws_ecr_repository.this : r.image_tag_mutability == "IMMUTABLE"])
    error_message = "image tags must be immutable"
  }

  assert {
    condition     = alltrue([for r in aws_ecr_repository.this : r.image_scanning_configuration[0].scan_on_push])
    error_message = "images must be scanned on push"
  }

  assert {
    condition = alltrue([for r in aws_ecr_repository.this : (
      r.encryption_configuration[0].encryption_type == "KMS" && r.encryption_configuration[0].kms_key == aws_kms_key.platform.arn
    )])
    error_message = "repositories must be encrypted with the platform KMS key"
  }

  assert {
    condition     = toset(keys(aws_ecr_lifecycle_policy.this)) == toset(keys(aws_ecr_repository.this))
    error_message = "every repository needs a lifecycle policy"
  }
}

# --- Secrets Manager ------------------------------------------------------------------------------------

run "secrets_are_kms_encrypted_and_never_inline" {
  command = apply

  assert {
    condition     = alltrue([for s in aws_secretsmanager_secret.this : s.kms_key_id == aws_kms_key.platform.arn])
    error_message = "every secret must be encrypted with the platform KMS key"
  }

  assert {
    # The Kubernetes Secrets include/helm/values.yaml references.
    condition = toset([for s in local.secrets : s.k8s_secret]) == toset([
      "airflow-metadata", "airflow-fernet-key", "airflow-api-secret-key", "airflow-jwt-secret", "maestro-secrets", "mlflow-db", "maestro-redis",
    ])
    error_message = "a Secrets Manager entry per Kubernetes Secret the Helm values reference"
  }

  assert {
    condition     = toset(keys(aws_secretsmanager_secret_version.generated)) == toset(["airflow-api-secret-key", "airflow-jwt-secret", "maestro-pii-key"])
    error_message = "exactly the format-free secrets are generated by GetRandomPassword"
  }

  assert {
    condition = alltrue([for name, s in local.secrets : s.source == "out-of-band" ? (
      !contains(keys(aws_secretsmanager_secret_version.generated), name) && name != "redis-auth-token" && name != "maestro-redis-connection"
    ) : true])
    error_message = "out-of-band secrets must get no value from Terraform"
  }

  assert {
    condition     = nonsensitive(strcontains(aws_secretsmanager_secret_version.redis_connection.secret_string, "ssl=true"))
    error_message = "the Redis connection string must use TLS"
  }

  assert {
    condition     = alltrue([for s in aws_secretsmanager_secret.this : startswith(s.name, "${var.name_prefix}/")])
    error_message = "secret names are namespaced by name_prefix"
  }
}

# The External Secrets Operator's IRSA role (include/helm/external-secrets.yaml): trusted by its
# service account only, reading exactly these entries and decrypting with their key.
run "external_secrets_role_reads_exactly_the_secrets" {
  command = plan

  # Known ARNs at plan time, so that the permission policy is read during the plan.
  override_resource {
    target          = aws_secretsmanager_secret.this
    override_during = plan
    values = {
      arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:acme-maestro-test/mocked-AbCdEf"
    }
  }

  override_resource {
    target          = aws_kms_key.platform
    override_during = plan
    values = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/mocked-platform"
    }
  }

  assert {
    condition = anytrue([for c in data.aws_iam_policy_document.irsa_assume["external-secrets"].statement[0].condition : (
      c.test == "StringEquals" && endswith(c.variable, ":sub") &&
      tolist(c.values) == tolist(["system:serviceaccount:airflow:external-secrets-airflow"])
    )])
    error_message = "the external-secrets role must trust exactly the SecretStore's service account of include/helm/external-secrets.yaml"
  }

  assert {
    condition     = aws_iam_role.irsa["external-secrets"].name == "acme-maestro-test-external-secrets"
    error_message = "the external-secrets role is named <name_prefix>-external-secrets (the placeholder of external-secrets.yaml)"
  }

  assert {
    condition = alltrue(flatten([for s in data.aws_iam_policy_document.external_secrets.statement : [
      for r in s.resources : !strcontains(r, "*")
    ]]))
    error_message = "the external-secrets policy must name its resources, never *"
  }

  assert {
    condition = anytrue([for s in data.aws_iam_policy_document.external_secrets.statement : (
      toset(s.actions) == toset(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]) &&
      toset(s.resources) == toset([for secret in aws_secretsmanager_secret.this : secret.arn])
    )])
    error_message = "the external-secrets role reads exactly the Secrets Manager entries of secrets.tf"
  }

  assert {
    condition = anytrue([for s in data.aws_iam_policy_document.external_secrets.statement : (
      toset(s.actions) == toset(["kms:Decrypt"]) && toset(s.resources) == toset([aws_kms_key.platform.arn])
    )])
    error_message = "the external-secrets role decrypts with the platform key only"
  }
}
