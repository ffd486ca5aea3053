-- Roles of the identity platform on PostgreSQL (README "Least privilege").
-- Run once as a superuser (or the cloud's admin role), then set the passwords
-- (\password identity_owner ...) and put each URL in its Secret:
--   identity-database-migrations  identity_owner   (migrations Job only: DDL)
--   identity-database             identity_app     (kyc-tier, liveness, matching, face-match)
--   identity-database-audit       identity_audit   (audit: INSERT and SELECT on its entries, UPDATE of
--                                                  the three columns an erasure's redaction writes)
-- The table privileges are granted by `identity migrate` itself after each
-- upgrade (IDENTITY_MIGRATE_GRANTS="audit=identity_audit,*=identity_app",
-- set by the chart from database.roles), per table from each service's
-- migrations (services/audit/migrations/__init__.py PRIVILEGES), so new
-- tables never wait for a manual GRANT.

CREATE ROLE identity_owner LOGIN;
CREATE ROLE identity_app LOGIN;
CREATE ROLE identity_audit LOGIN;

CREATE DATABASE identity OWNER identity_owner;
\connect identity
-- Only the owner creates objects; the services' roles only use them.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO identity_owner;
-- Bound what a stuck client can hold (the services keep transactions short).
ALTER ROLE identity_app SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE identity_audit SET idle_in_transaction_session_timeout = '60s';
