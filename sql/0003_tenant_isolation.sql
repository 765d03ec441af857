-- Tenant isolation inside the database (docs/multi-tenancy.md): row-level
-- security on every table, forced on the owner too, keyed on the acting
-- user that libspotdb sets for each transaction with
-- set_config('spotdb.user_id', <uuid>, true).  The setting is
-- transaction-local, so it is right behind a transaction-mode pooler and
-- can never outlive the statement or transaction it was set for.
--
-- Three roles, created here when missing (that needs CREATEROLE; a DBA
-- may create them beforehand instead), none of which can log in:
--   spotdb_app      the application: grant it to the login role services
--                   use.  It sees only what the acting user may see, and
--                   nothing at all without an acting user.
--   spotdb_service  trusted services (member of spotdb_app): without an
--                   acting user they see and change every row; with one,
--                   they are held to that user's rights like spotdb_app.
--   spotdb_auth     owns the two SECURITY DEFINER functions that must read
--                   users whoever asks (the acting user's role; the row a
--                   login names).  Its only right is reading users.
--
-- Table shapes do not change, and roles that bypass row-level security
-- (superusers, BYPASSRLS) work as before, so libraries built for version
-- 2 may open a database that has this:
-- spotdb: compatible

-- roles ---------------------------------------------------------------------

-- Roles belong to the cluster, not the database: another database may
-- have created them, maybe at this very moment (unique_violation).
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['spotdb_app', 'spotdb_service', 'spotdb_auth']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
    IF NOT pg_has_role('spotdb_service', 'spotdb_app', 'MEMBER') THEN
        BEGIN
            GRANT spotdb_app TO spotdb_service;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- Handing a function to spotdb_auth needs membership in it, which a
    -- CREATEROLE migrator (not a superuser) grants itself.
    IF NOT pg_has_role(current_user, 'spotdb_auth', 'MEMBER') THEN
        EXECUTE format('GRANT spotdb_auth TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO spotdb_app, spotdb_auth',
                   current_schema());
END
$$;

-- who is acting -------------------------------------------------------------

-- NULL when no acting user is set; a value that is not a UUID is an error,
-- so a mangled setting fails closed.  No SET clause, so that the planner
-- inlines it; it names nothing outside pg_catalog.
CREATE FUNCTION spotdb_scope_user() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT nullif(pg_catalog.current_setting('spotdb.user_id', true),
                  '')::uuid
$$;

-- The acting user's role, NULL when there is none or they are inactive.
-- Row-level security on users would hide the row (and would call this
-- function again), hence SECURITY DEFINER as spotdb_auth.  PL/pgSQL keeps
-- its plan for the session: as a SQL function it was planned at every
-- call, 0.1 ms each, several calls a statement.
CREATE FUNCTION spotdb_scope_role() RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN (SELECT u.role::text FROM users u
            WHERE u.id = spotdb_scope_user() AND u.is_active);
END
$$;

-- The user a login names (an email when it holds @, else a username), for
-- spotdb_user_authenticate, which cannot act as a user it has not yet
-- found.  It returns the stored hash: only spotdb_app may call it.
CREATE FUNCTION spotdb_login(p_login text) RETURNS SETOF users
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF strpos(p_login, '@') > 0 THEN
        RETURN QUERY SELECT * FROM users WHERE email = p_login;
    ELSE
        RETURN QUERY SELECT * FROM users WHERE username = p_login;
    END IF;
END
$$;

GRANT SELECT ON users TO spotdb_auth;
ALTER FUNCTION spotdb_scope_role() OWNER TO spotdb_auth;
ALTER FUNCTION spotdb_login(text) OWNER TO spotdb_auth;
REVOKE ALL ON FUNCTION spotdb_login(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spotdb_login(text) TO spotdb_app;

-- privileges ----------------------------------------------------------------

GRANT SELECT, INSERT, UPDATE, DELETE
    ON users, accounts, instances, model_registry, experiment_logs
    TO spotdb_app;
GRANT SELECT ON v_active_instances, v_recent_experiments TO spotdb_app;
GRANT SELECT ON spotdb_schema_migrations TO spotdb_app;

-- policies ------------------------------------------------------------------

-- (SELECT f()) makes each function an InitPlan, run once per statement
-- instead of once per row.

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
ALTER TABLE instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE instances FORCE ROW LEVEL SECURITY;
ALTER TABLE model_registry ENABLE ROW LEVEL SECURITY;
ALTER TABLE model_registry FORCE ROW LEVEL SECURITY;
ALTER TABLE experiment_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE experiment_logs FORCE ROW LEVEL SECURITY;

-- Trusted services, when no user is acting.
CREATE POLICY users_service ON users TO spotdb_service
    USING ((SELECT spotdb_scope_user()) IS NULL);
CREATE POLICY accounts_service ON accounts TO spotdb_service
    USING ((SELECT spotdb_scope_user()) IS NULL);
CREATE POLICY instances_service ON instances TO spotdb_service
    USING ((SELECT spotdb_scope_user()) IS NULL);
CREATE POLICY model_registry_service ON model_registry TO spotdb_service
    USING ((SELECT spotdb_scope_user()) IS NULL);
CREATE POLICY experiment_logs_service ON experiment_logs TO spotdb_service
    USING ((SELECT spotdb_scope_user()) IS NULL);

-- The definer functions above read every user.
CREATE POLICY users_auth ON users FOR SELECT TO spotdb_auth USING (true);

-- users: an admin manages everyone; others read and edit their own row
-- (not its role or is_active: the trigger below), never add or remove.
CREATE POLICY users_read ON users FOR SELECT TO spotdb_app
    USING ((SELECT spotdb_scope_role()) = 'admin' OR
           (id = (SELECT spotdb_scope_user()) AND
            (SELECT spotdb_scope_role()) IS NOT NULL));
CREATE POLICY users_edit ON users FOR UPDATE TO spotdb_app
    USING ((SELECT spotdb_scope_role()) = 'admin' OR
           (id = (SELECT spotdb_scope_user()) AND
            (SELECT spotdb_scope_role()) IS NOT NULL))
    WITH CHECK ((SELECT spotdb_scope_role()) = 'admin' OR
                (id = (SELECT spotdb_scope_user()) AND
                 (SELECT spotdb_scope_role()) IS NOT NULL));
CREATE POLICY users_add ON users FOR INSERT TO spotdb_app
    WITH CHECK ((SELECT spotdb_scope_role()) = 'admin');
CREATE POLICY users_remove ON users FOR DELETE TO spotdb_app
    USING ((SELECT spotdb_scope_role()) = 'admin');

-- A policy cannot compare a row's old and new values; a trigger can.
CREATE FUNCTION spotdb_guard_user_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path FROM CURRENT
AS $$
BEGIN
    IF spotdb_scope_user() IS NOT NULL AND
       spotdb_scope_role() IS DISTINCT FROM 'admin' AND
       (NEW.role IS DISTINCT FROM OLD.role OR
        NEW.is_active IS DISTINCT FROM OLD.is_active) THEN
        RAISE EXCEPTION 'only an admin may change a user''s role or is_active'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER guard_users_role
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION spotdb_guard_user_update();

-- accounts: an admin sees all; a user their own; lab their own LAB ones.
-- The same rule checks what a write leaves behind, so no account can be
-- given away, nor a lab account turned PROD.
CREATE POLICY accounts_tenant ON accounts TO spotdb_app
    USING ((SELECT spotdb_scope_role()) = 'admin' OR
           (user_id = (SELECT spotdb_scope_user()) AND
            ((SELECT spotdb_scope_role()) = 'user' OR
             ((SELECT spotdb_scope_role()) = 'lab' AND
              environment_type = 'LAB'))))
    WITH CHECK ((SELECT spotdb_scope_role()) = 'admin' OR
                (user_id = (SELECT spotdb_scope_user()) AND
                 ((SELECT spotdb_scope_role()) = 'user' OR
                  ((SELECT spotdb_scope_role()) = 'lab' AND
                   environment_type = 'LAB'))));

-- instances and decisions follow their account: the subqueries are
-- themselves filtered by the policies of the tables they read.  Columns
-- of the outer row are qualified: unqualified, account_id would be the
-- account's own AWS number.
CREATE POLICY instances_tenant ON instances TO spotdb_app
    USING ((SELECT spotdb_scope_role()) = 'admin' OR
           EXISTS (SELECT 1 FROM accounts a
                   WHERE a.id = instances.account_id))
    WITH CHECK ((SELECT spotdb_scope_role()) = 'admin' OR
                EXISTS (SELECT 1 FROM accounts a
                        WHERE a.id = instances.account_id));
CREATE POLICY experiment_logs_tenant ON experiment_logs TO spotdb_app
    USING ((SELECT spotdb_scope_role()) = 'admin' OR
           EXISTS (SELECT 1 FROM instances i
                   WHERE i.id = experiment_logs.instance_id))
    WITH CHECK ((SELECT spotdb_scope_role()) = 'admin' OR
                EXISTS (SELECT 1 FROM instances i
                        WHERE i.id = experiment_logs.instance_id));

-- Models are shared: every acting user reads them; admin and lab (R&D)
-- register and change them.
CREATE POLICY model_registry_read ON model_registry FOR SELECT TO spotdb_app
    USING ((SELECT spotdb_scope_role()) IS NOT NULL);
CREATE POLICY model_registry_add ON model_registry FOR INSERT TO spotdb_app
    WITH CHECK ((SELECT spotdb_scope_role()) IN ('admin', 'lab'));
CREATE POLICY model_registry_edit ON model_registry FOR UPDATE TO spotdb_app
    USING ((SELECT spotdb_scope_role()) IN ('admin', 'lab'))
    WITH CHECK ((SELECT spotdb_scope_role()) IN ('admin', 'lab'));
CREATE POLICY model_registry_remove ON model_registry FOR DELETE
    TO spotdb_app
    USING ((SELECT spotdb_scope_role()) IN ('admin', 'lab'));

-- views ---------------------------------------------------------------------

-- A plain view reads its tables with its owner's rights and so past the
-- querying role's policies; security_invoker views do not.
ALTER VIEW v_active_instances SET (security_invoker = true);
ALTER VIEW v_recent_experiments SET (security_invoker = true);
