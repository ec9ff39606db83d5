# Production: the shared platform cluster and its VPC already exist and are adopted; this
# stack adds Maestro's node groups, data stores, registries and secrets to them.
#   terraform init -backend-config=backend.hcl     (key e.g. maestro-ml/prod/aws.tfstate)
#   terraform apply -var-file=environments/prod.tfvars
region       = "eu-west-1"
name_prefix  = "acme-maestro-prod"
cluster_name = "platform-prod"

# Adopted VPC and cluster (create_cluster defaults to false).
vpc_id     = "vpc-0123456789abcdef0"
subnet_ids = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210", "subnet-0a1b2c3d4e5f60718"]

# The shared cluster already runs general-purpose nodes.
create_general_node_group = false

db_instance_class        = "db.m7g.large"
db_multi_az              = true
db_backup_retention_days = 14
db_deletion_protection   = true

redis_node_type          = "cache.r7g.large"
redis_num_cache_clusters = 3

tags = {
  Environment = "prod"
}
