# Development: everything created by this stack, sized small.
#   terraform init -backend-config=backend.hcl     (key e.g. maestro-ml/dev/aws.tfstate)
#   terraform apply -var-file=environments/dev.tfvars
region       = "eu-west-1"
name_prefix  = "acme-maestro-dev"
cluster_name = "maestro-dev"

# Created VPC (vpc_id unset) and cluster.
create_cluster     = true
vpc_cidr           = "10.41.0.0/16"
az_count           = 2
single_nat_gateway = true

# The API endpoint stays private (reach it through the VPN or SSM into the VPC). A public
# endpoint is opt-in: cluster_endpoint_public_access = true with cluster_endpoint_public_access_cidrs.

general_node_group = {
  instance_types = ["t3.large", "t3a.large"]
  min_size       = 1
  desired_size   = 1
  max_size       = 3
  disk_size_gib  = 50
}

batch_node_group = {
  instance_types = ["m6i.large", "m6a.large", "m5.large", "m5a.large"]
  min_size       = 0
  desired_size   = 0
  max_size       = 4
  disk_size_gib  = 50
}

db_instance_class        = "db.t4g.medium"
db_allocated_storage_gib = 20
db_multi_az              = false
db_backup_retention_days = 7

redis_node_type          = "cache.t4g.small"
redis_num_cache_clusters = 2

ecr_keep_tagged_images      = 20
secret_recovery_window_days = 7
flow_log_retention_days     = 365

tags = {
  Environment = "dev"
}
