-- One PostgreSQL for the local stack, one database per service (runs once, on an empty data volume).
CREATE DATABASE airflow;
CREATE DATABASE mlflow;
CREATE DATABASE maestro_feast;
