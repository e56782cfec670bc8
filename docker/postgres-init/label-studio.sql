-- Label Studio's own database on the compose PostgreSQL service, beside tagloop's (POSTGRES_DB). The postgres
-- image runs this once, as POSTGRES_USER, when it initialises an empty postgres-data volume; on a volume made
-- before this file existed, run it by hand once:
--   docker compose exec postgres psql -U tagloop -d tagloop -f /docker-entrypoint-initdb.d/label-studio.sql
CREATE DATABASE labelstudio;
