-- Spot Optimizer schema v1 ("Production Lab Mode" 1.0.0).
--
-- Built exactly as ../shared/spec/schema-v1.md describes: names, types,
-- defaults, nullability and the names PostgreSQL gives inline constraints
-- (users_email_key, accounts_user_id_fkey, ...) must match databases built
-- by hand from the original schema file, which libspotdb adopts.  Two
-- defects of that file are not copied: the admin hash below really is a
-- bcrypt hash of "admin" (cost 12, made with libxcrypt), and the database
-- comment is set through dynamic SQL instead of the invalid
-- COMMENT ON DATABASE current_database().
--
-- Applied by libspotdb inside one transaction, statement by statement.

CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

-- users -------------------------------------------------------------------

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    email VARCHAR(255) NOT NULL UNIQUE,
    username VARCHAR(50) NOT NULL UNIQUE,
    hashed_password VARCHAR(255) NOT NULL,
    full_name VARCHAR(100),
    role VARCHAR(20) NOT NULL DEFAULT 'user',
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    last_login TIMESTAMP,
    CONSTRAINT chk_role CHECK (role IN ('admin', 'user', 'lab'))
);

CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_username ON users(username);
CREATE INDEX idx_users_role ON users(role);

COMMENT ON TABLE users IS 'People who use the platform, with role-based access';
COMMENT ON COLUMN users.hashed_password IS 'bcrypt hash ($2b$, cost 12); never a plain password';
COMMENT ON COLUMN users.role IS 'admin: full access; user: only their own accounts; lab: R&D only';
COMMENT ON COLUMN users.updated_at IS 'Set by trigger update_users_updated_at';

-- accounts ----------------------------------------------------------------

CREATE TABLE accounts (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id VARCHAR(12) NOT NULL UNIQUE,
    account_name VARCHAR(100) NOT NULL,
    environment_type VARCHAR(20) NOT NULL DEFAULT 'LAB',
    role_arn VARCHAR(255) NOT NULL,
    external_id VARCHAR(255) NOT NULL,
    region VARCHAR(20) NOT NULL DEFAULT 'ap-south-1',
    is_active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT chk_environment_type CHECK (environment_type IN ('PROD', 'LAB'))
);

CREATE INDEX idx_accounts_user_id ON accounts(user_id);
CREATE INDEX idx_accounts_account_id ON accounts(account_id);
CREATE INDEX idx_accounts_environment_type ON accounts(environment_type);

COMMENT ON TABLE accounts IS 'AWS accounts reached through STS AssumeRole';
COMMENT ON COLUMN accounts.user_id IS 'Owner of the account (users.id)';
COMMENT ON COLUMN accounts.account_id IS 'The 12-digit AWS account number';
COMMENT ON COLUMN accounts.environment_type IS 'PROD or LAB';
COMMENT ON COLUMN accounts.role_arn IS 'arn:aws:iam::<account_id>:role/<name>, assumed through STS';
COMMENT ON COLUMN accounts.external_id IS 'STS external id; mandatory confused-deputy protection';

-- instances ---------------------------------------------------------------

CREATE TABLE instances (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    account_id UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    instance_id VARCHAR(50) NOT NULL UNIQUE,
    instance_type VARCHAR(20) NOT NULL,
    availability_zone VARCHAR(20) NOT NULL,
    assigned_model_version VARCHAR(50),
    pipeline_mode VARCHAR(20) NOT NULL DEFAULT 'CLUSTER',
    is_shadow_mode BOOLEAN DEFAULT FALSE,
    is_active BOOLEAN DEFAULT TRUE,
    last_evaluation TIMESTAMP,
    metadata JSONB,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT chk_pipeline_mode CHECK (pipeline_mode IN ('CLUSTER', 'LINEAR'))
);

CREATE INDEX idx_instances_account_id ON instances(account_id);
CREATE INDEX idx_instances_instance_id ON instances(instance_id);
CREATE INDEX idx_instances_pipeline_mode ON instances(pipeline_mode);
CREATE INDEX idx_instances_last_evaluation ON instances(last_evaluation);

COMMENT ON TABLE instances IS 'EC2 instances under Lab Mode';
COMMENT ON COLUMN instances.account_id IS 'accounts.id of the owning account, not the AWS number';
COMMENT ON COLUMN instances.instance_id IS 'EC2 instance id, such as i-1234567890abcdef0';
COMMENT ON COLUMN instances.assigned_model_version IS 'model_registry.version for A/B tests; NULL means the default model';
COMMENT ON COLUMN instances.pipeline_mode IS 'CLUSTER or LINEAR';
COMMENT ON COLUMN instances.is_shadow_mode IS 'Shadow runs are read-only: no real switches';
COMMENT ON COLUMN instances.last_evaluation IS 'Last time the optimizer ran on this instance';
COMMENT ON COLUMN instances.metadata IS 'Free-form tags and configuration';

-- model_registry ----------------------------------------------------------

CREATE TABLE model_registry (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    name VARCHAR(50) NOT NULL,
    version VARCHAR(20) NOT NULL,
    s3_path VARCHAR(255),
    local_path VARCHAR(255),
    description TEXT,
    is_experimental BOOLEAN DEFAULT FALSE,
    is_active BOOLEAN DEFAULT TRUE,
    feature_version VARCHAR(20),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_by UUID REFERENCES users(id),
    CONSTRAINT uq_model_version UNIQUE (name, version)
);

CREATE INDEX idx_model_registry_name ON model_registry(name);
CREATE INDEX idx_model_registry_version ON model_registry(version);
CREATE INDEX idx_model_registry_is_active ON model_registry(is_active);

COMMENT ON TABLE model_registry IS 'Versions of the ML models';
COMMENT ON COLUMN model_registry.s3_path IS 's3://bucket/key of the model artefact';
COMMENT ON COLUMN model_registry.is_experimental IS 'TRUE: lab use only';
COMMENT ON COLUMN model_registry.is_active IS 'FALSE: archived';
COMMENT ON COLUMN model_registry.feature_version IS 'Version of the feature schema the model needs';

-- experiment_logs ---------------------------------------------------------

CREATE TABLE experiment_logs (
    id UUID PRIMARY KEY DEFAULT uuid_generate_v4(),
    instance_id UUID NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    model_id UUID REFERENCES model_registry(id),
    pipeline_mode VARCHAR(20),
    is_shadow_run BOOLEAN DEFAULT FALSE,
    prediction_score FLOAT,
    decision VARCHAR(50),
    decision_reason TEXT,
    execution_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    execution_duration_ms INTEGER,
    candidates_evaluated INTEGER,
    selected_instance_type VARCHAR(20),
    selected_availability_zone VARCHAR(20),
    old_spot_price FLOAT,
    new_spot_price FLOAT,
    projected_hourly_savings FLOAT,
    features_used JSONB,
    error_message TEXT
);

CREATE INDEX idx_experiment_logs_instance_id ON experiment_logs(instance_id);
CREATE INDEX idx_experiment_logs_model_id ON experiment_logs(model_id);
CREATE INDEX idx_experiment_logs_execution_time ON experiment_logs(execution_time);
CREATE INDEX idx_experiment_logs_decision ON experiment_logs(decision);

COMMENT ON TABLE experiment_logs IS 'One row per optimizer decision, for R&D analytics';
COMMENT ON COLUMN experiment_logs.instance_id IS 'instances.id the decision was about';
COMMENT ON COLUMN experiment_logs.is_shadow_run IS 'TRUE: read-only run, nothing was switched';
COMMENT ON COLUMN experiment_logs.prediction_score IS 'Crash probability from 0.0 to 1.0';
COMMENT ON COLUMN experiment_logs.decision IS 'SWITCH, STAY or FALLBACK_ONDEMAND';
COMMENT ON COLUMN experiment_logs.candidates_evaluated IS 'Number of spot pools evaluated';
COMMENT ON COLUMN experiment_logs.projected_hourly_savings IS 'Estimated savings in $/hour';
COMMENT ON COLUMN experiment_logs.features_used IS 'Snapshot of the feature vector';
COMMENT ON COLUMN experiment_logs.error_message IS 'Set when the pipeline failed';

-- updated_at trigger ------------------------------------------------------

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER update_users_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER update_accounts_updated_at
    BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

CREATE TRIGGER update_instances_updated_at
    BEFORE UPDATE ON instances
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();

-- views -------------------------------------------------------------------

-- The model join is by version string only, as in schema v1: two models
-- that share a version give two rows for the instance.
CREATE VIEW v_active_instances AS
SELECT
    i.id,
    i.instance_id,
    i.instance_type,
    i.availability_zone,
    i.pipeline_mode,
    i.is_shadow_mode,
    i.assigned_model_version,
    i.last_evaluation,
    a.account_id AS aws_account_id,
    a.account_name,
    a.environment_type,
    a.region,
    u.email AS user_email,
    u.username,
    m.name AS model_name,
    m.version AS model_version
FROM instances i
JOIN accounts a ON a.id = i.account_id
JOIN users u ON u.id = a.user_id
LEFT JOIN model_registry m ON m.version = i.assigned_model_version
WHERE i.is_active = TRUE AND a.is_active = TRUE;

COMMENT ON VIEW v_active_instances IS 'Active instances of active accounts, with owner and assigned model';

-- The 1000-row window is applied inside the view: a filter on top of it
-- sees only the newest 1000 decisions.
CREATE VIEW v_recent_experiments AS
SELECT
    e.id,
    e.execution_time,
    e.decision,
    e.prediction_score,
    e.is_shadow_run,
    e.execution_duration_ms,
    i.instance_id,
    i.instance_type,
    i.pipeline_mode,
    a.account_id AS aws_account_id,
    a.account_name,
    m.name AS model_name,
    m.version AS model_version,
    e.selected_instance_type,
    e.projected_hourly_savings
FROM experiment_logs e
JOIN instances i ON i.id = e.instance_id
JOIN accounts a ON a.id = i.account_id
LEFT JOIN model_registry m ON m.id = e.model_id
ORDER BY e.execution_time DESC
LIMIT 1000;

COMMENT ON VIEW v_recent_experiments IS 'The newest 1000 decisions with instance, account and model';

-- initial data ------------------------------------------------------------

-- Default login admin / admin: change it in production.
INSERT INTO users (email, username, hashed_password, full_name, role)
VALUES ('admin@spotoptimizer.local', 'admin',
        '$2b$12$/ASjsC1a43P.fo6GCkzY6.51BDVO9iE8UsE9KxAzGQW5AU6lIb4y6',
        'System Administrator', 'admin')
ON CONFLICT (email) DO NOTHING;

-- Commenting on a database needs its ownership; a role that may migrate
-- but does not own the database still gets a working schema.
DO $$
BEGIN
    EXECUTE format('COMMENT ON DATABASE %I IS %L', current_database(),
                   'Spot Optimizer Platform - Production Lab Mode Database');
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'database comment not set: %', SQLERRM;
END
$$;
