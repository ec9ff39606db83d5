# Secrets Manager entries behind the Kubernetes Secrets that include/helm/values.yaml references
# (External Secrets syncs each entry into the Kubernetes Secret and key named below). All are
# encrypted with the platform KMS key. No value is written in this directory:
#
#   generated    Secrets Manager's GetRandomPassword (data source) fills it on the first apply;
#                later applies keep the first value (ignore_changes), so rotation is out of band.
#                (Not an ephemeral resource + write-only attribute, which would keep the value out
#                of state: `terraform test` cannot mock ephemeral resources yet.)
#   derived      built from other resources (the Redis auth token and endpoint).
#   Generated and derived values are in the state, which the S3 backend keeps encrypted.
#   out-of-band  a container only: the value is put once by an operator (README.md), because it
#                needs a format Secrets Manager cannot generate (Fernet key) or a database user
#                created after the instance exists (connection URIs).
#
# The RDS master password is not among them: RDS manages it in its own secret (rds.tf).

locals {
  secrets = {
    airflow-metadata-connection = {
      description = "Airflow metadata DB URI: postgresql+psycopg://airflow:PASSWORD@HOST:5432/airflow"
      k8s_secret  = "airflow-metadata"
      k8s_key     = "connection"
      source      = "out-of-band"
    }
    airflow-fernet-key = {
      description = "Airflow Fernet key (32 url-safe base64 bytes)"
      k8s_secret  = "airflow-fernet-key"
      k8s_key     = "fernet-key"
      source      = "out-of-band"
    }
    airflow-api-secret-key = {
      description = "Airflow api-server secret key"
      k8s_secret  = "airflow-api-secret-key"
      k8s_key     = "api-secret-key"
      source      = "generated"
    }
    airflow-jwt-secret = {
      description = "Airflow JWT signing secret"
      k8s_secret  = "airflow-jwt-secret"
      k8s_key     = "jwt-secret"
      source      = "generated"
    }
    maestro-pii-key = {
      description = "MAESTRO_PII_KEY: keyed-hash secret for PII masking (never rotate casually: hashes change)"
      k8s_secret  = "maestro-secrets"
      k8s_key     = "pii-key"
      source      = "generated"
    }
    maestro-feast-registry-sql-uri = {
      description = "MAESTRO_FEAST_REGISTRY_SQL_URI: postgresql+psycopg://feast:PASSWORD@HOST:5432/feast_registry"
      k8s_secret  = "maestro-secrets"
      k8s_key     = "feast-registry-sql-uri"
      source      = "out-of-band"
    }
    maestro-redis-connection = {
      description = "MAESTRO_REDIS_CONNECTION: Feast Redis connection string (host:port,ssl=true,password=...)"
      k8s_secret  = "maestro-secrets"
      k8s_key     = "redis-connection"
      source      = "derived"
    }
    mlflow-db-uri = {
      description = "MLflow backend store URI: postgresql+psycopg://mlflow:PASSWORD@HOST:5432/mlflow"
      k8s_secret  = "mlflow-db"
      k8s_key     = "backend-store-uri"
      source      = "out-of-band"
    }
    redis-auth-token = {
      description = "ElastiCache Redis AUTH token (source of the replication group's auth_token)"
      k8s_secret  = "maestro-redis"
      k8s_key     = "auth-token"
      source      = "generated"
    }
  }

  # The Redis token is generated too, but in redis.tf, next to the replication group that uses it.
  generated_secrets = toset([for name, s in local.secrets : name if s.source == "generated" && name != "redis-auth-token"])
}

resource "aws_secretsmanager_secret" "this" {
  for_each = local.secrets

  #checkov:skip=CKV2_AWS_57:Automatic rotation needs a rotation Lambda per secret kind; these are rotated by the runbook in terraform/README.md (the RDS master password, the one database credential Terraform owns, is rotated by RDS itself).
  name                    = "${var.name_prefix}/${each.key}"
  description             = each.value.description
  kms_key_id              = aws_kms_key.platform.arn
  recovery_window_in_days = var.secret_recovery_window_days

  tags = {
    ValueSource      = each.value.source
    KubernetesSecret = "${each.value.k8s_secret}/${each.value.k8s_key}"
  }
}

data "aws_secretsmanager_random_password" "generated" {
  for_each = local.generated_secrets

  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each = local.generated_secrets

  secret_id     = aws_secretsmanager_secret.this[each.key].id
  secret_string = data.aws_secretsmanager_random_password.generated[each.key].random_password

  lifecycle {
    # A new random password is drawn on every plan: keep the first one.
    ignore_changes = [secret_string]
  }
}

# The Redis auth token (redis.tf draws it): the replication group reads it from here.
resource "aws_secretsmanager_secret_version" "redis_auth_token" {
  secret_id     = aws_secretsmanager_secret.this["redis-auth-token"].id
  secret_string = data.aws_secretsmanager_random_password.redis_auth_token.random_password

  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret_version" "redis_connection" {
  secret_id     = aws_secretsmanager_secret.this["maestro-redis-connection"].id
  secret_string = "${aws_elasticache_replication_group.this.primary_endpoint_address}:${aws_elasticache_replication_group.this.port},ssl=true,password=${aws_secretsmanager_secret_version.redis_auth_token.secret_string}"
}
