locals {
  # Same single source of truth as the AWS stack in ../ and the Airflow pod spec.
  gpu_pool = jsondecode(file("${path.module}/../../include/gpu_node_pool.json"))
}
