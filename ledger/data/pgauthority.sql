-- caseledger on PostgreSQL: the database is the authority.
--
-- Users hold no INSERT, UPDATE or DELETE on any table.  Entries are appended only through
-- the SECURITY DEFINER functions below, which take the actor from caseledger_me()
-- (the session user, or the role it set), check it
-- against the enrolments and the policy the register recorded (kept here in
-- caseledger_users and caseledger_policy, changed only through register entries), check
-- seq and prev_hash against the case's head, and keep a provenance row per entry that
-- `caseledger verify` compares with the stored entries.  Triggers refuse UPDATE, DELETE
-- and TRUNCATE of the history for everyone.
--
-- __S__ is replaced by the quoted schema, __SCHEMA__ by the schema's name as a literal.
-- Statements are separated by lines holding only the separator comment (two dashes, ;;).

CREATE TABLE IF NOT EXISTS __S__.caseledger_provenance (
    originator_id uuid NOT NULL,
    seq bigint NOT NULL,
    case_ref text NOT NULL,
    notification_id bigint NOT NULL UNIQUE,
    type text NOT NULL,
    actor text NOT NULL,
    role text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    recorded_at timestamptz NOT NULL,
    regime text NOT NULL,
    agency text,
    approved_by text,
    db_time timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (originator_id, seq),
    UNIQUE (case_ref, seq)
)
-- ;;
CREATE TABLE IF NOT EXISTS __S__.caseledger_users (
    name text PRIMARY KEY,
    roles text[] NOT NULL,
    agency text
)
-- ;;
CREATE TABLE IF NOT EXISTS __S__.caseledger_policy (
    role text PRIMARY KEY,
    record text[] NOT NULL,
    regimes text[],
    own_agency boolean NOT NULL,
    actions text[] NOT NULL,
    approves text[] NOT NULL DEFAULT '{}',
    sees text NOT NULL DEFAULT 'all'
)
-- ;;
-- The personal-data screen: salted SHA-256 digests of each folded form of a case's
-- personal values (ledger/personal_screen.py), written with the entry that carries them,
-- so that a writer who may not read the values can still have an entry's text checked
-- (caseledger_personal_screen).  Users get no privilege on it; only the functions below
-- read or write it, and an erasure deletes a case's rows with its values.
CREATE TABLE IF NOT EXISTS __S__.caseledger_personal_screen (
    case_ref text NOT NULL,
    seq bigint NOT NULL,
    salt bytea NOT NULL,
    length int NOT NULL,
    digest bytea NOT NULL,
    PRIMARY KEY (case_ref, digest)
)
-- ;;
REVOKE ALL ON __S__.caseledger_personal_screen FROM PUBLIC
-- ;;
-- A provenance table made before it kept the agency gains the column.
ALTER TABLE __S__.caseledger_provenance ADD COLUMN IF NOT EXISTS agency text
-- ;;
-- Tables made before approvals were checked gain the approver an entry names (kept as
-- the database checked it, in clear even in an encrypted store: it is an enrolled user's
-- name) and the entry types each role approves (none, for a policy recorded before).
ALTER TABLE __S__.caseledger_provenance ADD COLUMN IF NOT EXISTS approved_by text
-- ;;
ALTER TABLE __S__.caseledger_policy ADD COLUMN IF NOT EXISTS approves text[] NOT NULL DEFAULT '{}'
-- ;;
-- A policy table made before roles said what they read gains it ('all': as it was).
ALTER TABLE __S__.caseledger_policy ADD COLUMN IF NOT EXISTS sees text NOT NULL DEFAULT 'all'
-- ;;
-- A register table made before the register's clear columns existed gains them.
DO $migrate$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = __SCHEMA__ AND table_name = 'caseledger_register'
          AND column_name = 'hash'
    ) THEN
        ALTER TABLE __S__.caseledger_register ADD COLUMN type text, ADD COLUMN actor text,
            ADD COLUMN role text, ADD COLUMN prev_hash text, ADD COLUMN hash text;
    END IF;
END
$migrate$
-- ;;
CREATE OR REPLACE FUNCTION __S__.caseledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '42501',
        MESSAGE = format('the ledger''s history cannot be changed: %s on %s is refused',
                         TG_OP, TG_TABLE_NAME);
END
$body$
-- ;;
CREATE OR REPLACE TRIGGER caseledger_events_immutable
    BEFORE UPDATE OR DELETE ON __S__.caseledger_events
    FOR EACH ROW EXECUTE FUNCTION __S__.caseledger_refuse_change()
-- ;;
CREATE OR REPLACE TRIGGER caseledger_events_no_truncate
    BEFORE TRUNCATE ON __S__.caseledger_events
    FOR EACH STATEMENT EXECUTE FUNCTION __S__.caseledger_refuse_change()
-- ;;
CREATE OR REPLACE TRIGGER caseledger_register_immutable
    BEFORE UPDATE OR DELETE ON __S__.caseledger_register
    FOR EACH ROW EXECUTE FUNCTION __S__.caseledger_refuse_change()
-- ;;
CREATE OR REPLACE TRIGGER caseledger_register_no_truncate
    BEFORE TRUNCATE ON __S__.caseledger_register
    FOR EACH STATEMENT EXECUTE FUNCTION __S__.caseledger_refuse_change()
-- ;;
CREATE OR REPLACE TRIGGER caseledger_provenance_immutable
    BEFORE UPDATE OR DELETE ON __S__.caseledger_provenance
    FOR EACH ROW EXECUTE FUNCTION __S__.caseledger_refuse_change()
-- ;;
CREATE OR REPLACE TRIGGER caseledger_provenance_no_truncate
    BEFORE TRUNCATE ON __S__.caseledger_provenance
    FOR EACH STATEMENT EXECUTE FUNCTION __S__.caseledger_refuse_change()
-- ;;
-- Who is acting: the role the session has set (SET ROLE, as a web server does per request
-- for the user it serves: its login is a member of each user's role, NOINHERIT), else the
-- session user (the CLI).  PostgreSQL allows SET ROLE only to a role the session user is a
-- member of, and a SECURITY DEFINER function changes current_user but not this setting,
-- so the functions below read the caller's own choice, never their definer.
CREATE OR REPLACE FUNCTION __S__.caseledger_me() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $body$
    SELECT CASE WHEN current_setting('role') = 'none' THEN session_user::text
                ELSE current_setting('role') END
$body$
-- ;;
-- Whether the store's entries are readable by SQL (not encrypted at rest).  An encrypted
-- store's checks of an entry's content are made by `verify`, which has the key.
-- PL/pgSQL, as caseledger_operator and caseledger_screened below: a PL/pgSQL function's
-- statement plans are kept for the session, where an SQL function with its own settings
-- (search_path) is planned again at every call (0.07 to 0.2 ms an append).
CREATE OR REPLACE FUNCTION __S__.caseledger_clear() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    RETURN coalesce(
        (SELECT value FROM __S__.caseledger_meta WHERE key = 'encryption'), 'none'::bytea
    ) = 'none'::bytea;
END
$body$
-- ;;
-- Whether the session user is the host's operator (a superuser or the schema's owner),
-- who could rewrite the tables anyway and is trusted for the clock (e.g. importing with
-- a fixed clock).  Everyone else's recorded_at must be within 5 minutes of the database's.
CREATE OR REPLACE FUNCTION __S__.caseledger_operator() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    me text := __S__.caseledger_me();
BEGIN
    RETURN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = me AND rolsuper)
        OR EXISTS (
            SELECT 1 FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
            WHERE n.nspname = __SCHEMA__ AND r.rolname = me
        );
END
$body$
-- ;;
-- The ledger's own form of recorded_at (UTC, microseconds, Z): nothing else is accepted,
-- so a time cannot be given in a form that sorts or parses differently elsewhere.
CREATE OR REPLACE FUNCTION __S__.caseledger_stamp(value jsonb) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    IF jsonb_typeof(value) IS DISTINCT FROM 'string'
       OR (value #>> ARRAY[]::text[]) !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{6}Z$' THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = 'refused by the database: recorded_at must be UTC with microseconds (YYYY-MM-DDTHH:MM:SS.ffffffZ)';
    END IF;
    RETURN (value #>> ARRAY[]::text[])::timestamptz;
END
$body$
-- ;;
-- Whether a register entry has the fields its type needs, of the right JSON types (a
-- malformed entry would make every later fold of the register fail).
CREATE OR REPLACE FUNCTION __S__.caseledger_register_shape(e jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    kind text := e ->> 'type';
    needs text[];
    f text;
    r record;
    k text;
BEGIN
    IF jsonb_typeof(e -> 'seq') IS DISTINCT FROM 'number' THEN RETURN 'seq must be a number'; END IF;
    FOREACH f IN ARRAY ARRAY['type', 'actor', 'role', 'prev_hash', 'hash', 'recorded_at'] LOOP
        IF jsonb_typeof(e -> f) IS DISTINCT FROM 'string' THEN RETURN f || ' must be text'; END IF;
    END LOOP;
    needs := CASE kind
        WHEN 'UserEnrolled' THEN ARRAY['user']
        WHEN 'UserRemoved' THEN ARRAY['user', 'reason']
        WHEN 'LegalHoldPlaced' THEN ARRAY['case', 'reason']
        WHEN 'LegalHoldReleased' THEN ARRAY['case', 'reason']
        WHEN 'PersonalDataErased' THEN ARRAY['case', 'reason']
        WHEN 'PolicyChanged' THEN ARRAY['text', 'sha256', 'reason']
        ELSE ARRAY[]::text[] END;
    FOREACH f IN ARRAY needs LOOP
        IF jsonb_typeof(e -> f) IS DISTINCT FROM 'string' OR btrim(e ->> f) = '' THEN
            RETURN format('%s needs %s as text', kind, f);
        END IF;
    END LOOP;
    IF kind = 'UserEnrolled' AND (jsonb_typeof(e -> 'roles') IS DISTINCT FROM 'array'
        OR jsonb_array_length(e -> 'roles') = 0
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(e -> 'roles') x
                   WHERE jsonb_typeof(x) <> 'string')) THEN
        RETURN 'UserEnrolled needs roles as a list of names';
    END IF;
    IF kind = 'PersonalDataErased' AND jsonb_typeof(e -> 'fields') IS DISTINCT FROM 'array' THEN
        RETURN 'PersonalDataErased needs fields as a list';
    END IF;
    IF kind = 'PolicyChanged' THEN
        IF jsonb_typeof(e -> 'policy' -> 'roles') IS DISTINCT FROM 'object' THEN
            RETURN 'PolicyChanged needs policy.roles';
        END IF;
        FOR r IN SELECT key, value FROM jsonb_each(e -> 'policy' -> 'roles') LOOP
            IF r.key NOT IN ('business-unit', 'chair', 'safeguarding-partner', 'panel-member',
                             'agency', 'peer', 'reviewer', 'inspector', 'admin') THEN
                RETURN format('%s is not a role', r.key);
            END IF;
            IF jsonb_typeof(r.value) IS DISTINCT FROM 'object' THEN
                RETURN format('roles.%s must be an object', r.key);
            END IF;
            FOREACH k IN ARRAY ARRAY['record', 'actions'] LOOP
                IF jsonb_typeof(r.value -> k) IS DISTINCT FROM 'array' OR EXISTS (
                    SELECT 1 FROM jsonb_array_elements(r.value -> k) x
                    WHERE jsonb_typeof(x) <> 'string') THEN
                    RETURN format('roles.%s.%s must be a list of names', r.key, k);
                END IF;
            END LOOP;
            IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(r.value -> 'actions') a
                       WHERE a NOT IN ('users', 'hold', 'erase-personal', 'checkpoint',
                                       'policy', 'export-personal')) THEN
                RETURN format('roles.%s.actions names an unknown action', r.key);
            END IF;
            IF jsonb_typeof(r.value -> 'regimes') NOT IN ('null', 'array') OR EXISTS (
                SELECT 1 FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(r.value -> 'regimes') = 'array'
                         THEN r.value -> 'regimes' ELSE '[]'::jsonb END) x
                WHERE x NOT IN ('"wt2015"', '"wt2018"', '"wt2023"')) THEN
                RETURN format('roles.%s.regimes must be null or a list of regimes', r.key);
            END IF;
            IF jsonb_typeof(r.value -> 'approves') NOT IN ('null', 'array') OR EXISTS (
                SELECT 1 FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(r.value -> 'approves') = 'array'
                         THEN r.value -> 'approves' ELSE '[]'::jsonb END) x
                WHERE jsonb_typeof(x) <> 'string') THEN
                RETURN format('roles.%s.approves must be a list of entry types', r.key);
            END IF;
            IF (r.value ? 'sees') AND (r.value ->> 'sees') IS DISTINCT FROM 'all'
               AND (r.value ->> 'sees') IS DISTINCT FROM 'own-agency' THEN
                RETURN format('roles.%s.sees must be all or own-agency', r.key);
            END IF;
            IF jsonb_typeof(r.value -> 'own_agency') IS DISTINCT FROM 'boolean' THEN
                RETURN format('roles.%s.own_agency must be true or false', r.key);
            END IF;
        END LOOP;
    END IF;
    RETURN NULL;
END
$body$
-- ;;
CREATE OR REPLACE FUNCTION __S__.caseledger_refuse(message text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'refused by the database: ' || message;
END
$body$
-- ;;
-- Append register entries (administration: enrolments, holds, erasures, checkpoints,
-- policy changes), each checked against the session user, the register's head, and the
-- recorded policy; enrolments and policies are kept in caseledger_users/_policy.
CREATE OR REPLACE FUNCTION __S__.caseledger_register_append(
    p_entries jsonb, p_states bytea[], p_erase_case text
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    me text := __S__.caseledger_me();
    clear boolean := __S__.caseledger_clear();
    e jsonb;
    i int;
    head_seq bigint;
    head_hash text;
    kind text;
    wanted text;
    my_roles text[];
    rec timestamptz;
    operator boolean := __S__.caseledger_operator();
BEGIN
    PERFORM set_config('lock_timeout', '30s', true);
    LOCK TABLE __S__.caseledger_register IN EXCLUSIVE MODE;
    FOR i IN 0 .. jsonb_array_length(p_entries) - 1 LOOP
        e := p_entries -> i;
        kind := e ->> 'type';
        SELECT seq, hash INTO head_seq, head_hash
            FROM __S__.caseledger_register ORDER BY seq DESC LIMIT 1;
        IF NOT FOUND THEN
            head_seq := 0;
            head_hash := repeat('0', 64);
        END IF;
        IF (e ->> 'seq')::bigint IS DISTINCT FROM head_seq + 1
           OR (e ->> 'prev_hash') IS DISTINCT FROM head_hash THEN
            RAISE EXCEPTION USING ERRCODE = '23505',
                MESSAGE = format('the register moved on: register#%s is not next', e ->> 'seq');
        END IF;
        IF (e ->> 'actor') IS DISTINCT FROM me THEN
            PERFORM __S__.caseledger_refuse(format(
                'a register entry''s actor must be the session user %s, not %s', me, e ->> 'actor'));
        END IF;
        IF __S__.caseledger_register_shape(e) IS NOT NULL THEN
            PERFORM __S__.caseledger_refuse(__S__.caseledger_register_shape(e));
        END IF;
        rec := __S__.caseledger_stamp(e -> 'recorded_at');
        IF NOT operator AND abs(extract(epoch FROM rec - clock_timestamp())) > 300 THEN
            PERFORM __S__.caseledger_refuse(format(
                'register#%s: recorded_at %s is not the database''s time', e ->> 'seq',
                e ->> 'recorded_at'));
        END IF;
        IF clear AND convert_from(p_states[i + 1], 'UTF8')::jsonb IS DISTINCT FROM e THEN
            PERFORM __S__.caseledger_refuse('the stored register entry differs from the one checked');
        END IF;
        wanted := CASE kind
            WHEN 'UserEnrolled' THEN 'users' WHEN 'UserRemoved' THEN 'users'
            WHEN 'LegalHoldPlaced' THEN 'hold' WHEN 'LegalHoldReleased' THEN 'hold'
            WHEN 'PersonalDataErased' THEN 'erase-personal'
            WHEN 'CheckpointSigned' THEN 'checkpoint' WHEN 'PolicyChanged' THEN 'policy'
        END;
        IF wanted IS NULL THEN
            PERFORM __S__.caseledger_refuse(format('%s is not a register entry type', kind));
        END IF;
        IF head_seq < 2 THEN
            -- A new store (an empty register): its first user records the policy as
            -- register#1, then enrols itself as admin as register#2; nothing else.
            IF NOT (
                (head_seq = 0 AND kind = 'PolicyChanged')
                OR (head_seq = 1 AND kind = 'UserEnrolled' AND (e ->> 'user') = me
                    AND (e -> 'roles') ? 'admin'
                    AND (SELECT actor FROM __S__.caseledger_register WHERE seq = 1) = me)
            ) THEN
                PERFORM __S__.caseledger_refuse(
                    'a new store begins with its policy and its first user''s own admin enrolment');
            END IF;
        ELSE
            SELECT roles INTO my_roles FROM __S__.caseledger_users WHERE name = me;
            IF NOT FOUND THEN
                PERFORM __S__.caseledger_refuse(format('%s is not enrolled in this store', me));
            END IF;
            IF NOT ((e ->> 'role') = ANY (my_roles)) THEN
                PERFORM __S__.caseledger_refuse(format('%s is not enrolled as %s', me, e ->> 'role'));
            END IF;
            IF NOT EXISTS (
                SELECT 1 FROM __S__.caseledger_policy
                WHERE role = (e ->> 'role') AND wanted = ANY (actions)
            ) THEN
                PERFORM __S__.caseledger_refuse(format(
                    '%s (role %s) may not run %s', me, e ->> 'role', wanted));
            END IF;
        END IF;
        IF kind = 'PolicyChanged' THEN
            DELETE FROM __S__.caseledger_policy;
            INSERT INTO __S__.caseledger_policy
                SELECT r.key,
                       ARRAY(SELECT jsonb_array_elements_text(r.value -> 'record')),
                       CASE WHEN jsonb_typeof(r.value -> 'regimes') = 'array'
                            THEN ARRAY(SELECT jsonb_array_elements_text(r.value -> 'regimes')) END,
                       coalesce((r.value ->> 'own_agency')::boolean, false),
                       ARRAY(SELECT jsonb_array_elements_text(r.value -> 'actions')),
                       ARRAY(SELECT jsonb_array_elements_text(
                           CASE WHEN jsonb_typeof(r.value -> 'approves') = 'array'
                                THEN r.value -> 'approves' ELSE '[]'::jsonb END)),
                       coalesce(r.value ->> 'sees', 'all')
                FROM jsonb_each(e -> 'policy' -> 'roles') AS r;
        ELSIF kind = 'UserEnrolled' THEN
            INSERT INTO __S__.caseledger_users
                VALUES (e ->> 'user', ARRAY(SELECT jsonb_array_elements_text(e -> 'roles')),
                        e ->> 'agency')
                ON CONFLICT (name) DO UPDATE SET roles = EXCLUDED.roles, agency = EXCLUDED.agency;
        ELSIF kind = 'UserRemoved' THEN
            DELETE FROM __S__.caseledger_users WHERE name = (e ->> 'user');
        ELSIF kind = 'PersonalDataErased' THEN
            IF p_erase_case IS NULL OR (clear AND p_erase_case IS DISTINCT FROM (e ->> 'case')) THEN
                PERFORM __S__.caseledger_refuse('an erasure must erase the rows of the case it names');
            END IF;
            DELETE FROM __S__.caseledger_personal_keys WHERE case_ref = p_erase_case;
            DELETE FROM __S__.caseledger_personal WHERE case_ref = p_erase_case;
            DELETE FROM __S__.caseledger_personal_screen WHERE case_ref = p_erase_case;
        END IF;
        IF kind IN ('PolicyChanged', 'UserEnrolled', 'UserRemoved')
           AND head_seq >= 1
           AND NOT EXISTS (
               SELECT 1 FROM __S__.caseledger_users u
               JOIN __S__.caseledger_policy p ON p.role = ANY (u.roles)
               WHERE 'users' = ANY (p.actions) AND 'policy' = ANY (p.actions)
           ) THEN
            PERFORM __S__.caseledger_refuse(
                'no enrolled user could enrol users or change the policy after this');
        END IF;
        INSERT INTO __S__.caseledger_register (seq, state, type, actor, role, prev_hash, hash)
            VALUES ((e ->> 'seq')::bigint, p_states[i + 1], kind, me, e ->> 'role',
                    e ->> 'prev_hash', e ->> 'hash');
    END LOOP;
END
$body$
-- ;;
-- The settled position of the entries' log: the highest position p such that no
-- transaction still in flight can commit an entry at a position <= p.  caseledger_append
-- takes no exclusive table lock (several writers append at once), so entries commit out
-- of position order; whoever follows the log (the index's catch-up, checkpoints, exports,
-- verify) reads only up to this position, in a statement run after this one returns
-- (READ COMMITTED: a new snapshot), and then never sees a lower position appear later.
-- Why it holds:
--   1. V is the id sequence's last value: every position handed out so far, committed,
--      in flight or rolled back (nextval is not transactional).  With CACHE 1 (the
--      serial's default, checked) a backend holds no numbers ahead of the sequence.
--   2. Every append first takes its table's ROW EXCLUSIVE lock, then reads the
--      sequence's last value L and holds two shared advisory locks that say it
--      (caseledger_settle_bound: L's high and low 32 bits under this schema's two keys),
--      and only then takes positions, each > L.  Both are held to the end of the
--      transaction.  An INSERT's own ROW EXCLUSIVE lock is likewise taken before its
--      DEFAULT nextval is evaluated: in parse analysis (parser/analyze.c,
--      transformInsertStmt -> setTargetTable) or, for a PL/pgSQL statement's cached
--      plan, in GetCachedPlan -> CheckCachedPlan -> AcquireExecutorLocks
--      (utils/cache/plancache.c), before the executor runs.  So a transaction that
--      took a position <= V held these locks before V was read, and if it is still
--      running it is among the holders seen in pg_locks after V was read (fast-path
--      locks included: pg_locks reads each backend's fast-path slots).
--   3. A holder that says its L cannot commit a position <= L: the settled position is
--      at most the least L of the transactions in flight, and it need not wait for
--      them (a long `record` holds readers back at its L, it does not stall them).  A
--      holder of the table lock that says no L yet (between its two first statements,
--      or an append of a version before this one, during an upgrade) is waited for.
--      Locks a user takes under the same keys can only lower the least L (the reader
--      lags), never raise it: the append always takes its own.
--   4. It waits up to PATIENCE for the holders in flight when V was read to end, so that
--      a reader usually sees every entry committed before it asked (its own included).
-- Executable by every role that may use the schema (as the other read functions): it
-- reveals the number of positions handed out and waits; it reads no entry.
CREATE OR REPLACE FUNCTION __S__.caseledger_settle_keys(OUT hi int, OUT lo int)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $body$
    SELECT hashtext('caseledger settled hi ' || __SCHEMA__),
           hashtext('caseledger settled lo ' || __SCHEMA__)
$body$
-- ;;
CREATE OR REPLACE FUNCTION __S__.caseledger_settle_bound() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    ids regclass := pg_get_serial_sequence(format('%I.caseledger_events', __SCHEMA__),
                                           'notification_id')::regclass;
    keys record := __S__.caseledger_settle_keys();
    low bigint := coalesce(pg_sequence_last_value(ids), 0);
    part bigint := low & 4294967295;
BEGIN
    -- the high half first: a reader that sees it without the low half takes the low as 0
    PERFORM pg_advisory_xact_lock_shared(keys.hi, (low >> 32)::int);
    PERFORM pg_advisory_xact_lock_shared(
        keys.lo, (CASE WHEN part >= 2147483648 THEN part - 4294967296 ELSE part END)::int);
END
$body$
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_settle_bound() FROM PUBLIC
-- ;;
CREATE OR REPLACE FUNCTION __S__.caseledger_settled_position() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    events regclass := to_regclass(format('%I.caseledger_events', __SCHEMA__));
    ids regclass := pg_get_serial_sequence(format('%I.caseledger_events', __SCHEMA__),
                                           'notification_id')::regclass;
    keys record := __S__.caseledger_settle_keys();
    here oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    settled bigint;
    least_bound bigint;
    unsaid text[];
    started timestamptz := clock_timestamp();
    pause float8 := 0.0002;
BEGIN
    IF pg_is_in_recovery() THEN
        -- a standby sees neither the primary's locks nor the numbers it handed out
        RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE =
            'a standby cannot tell which positions of the entries'' log are settled: '
            'follow the log on the primary';
    END IF;
    IF (SELECT s.seqcache FROM pg_sequence s WHERE s.seqrelid = ids) IS DISTINCT FROM 1 THEN
        RAISE EXCEPTION 'the sequence % caches numbers in each session: the settled '
            'position needs CACHE 1', ids;
    END IF;
    settled := coalesce(pg_sequence_last_value(ids), 0);
    LOOP
        -- every other transaction writing the log: its least L, or none said yet
        SELECT min(w.bound), array_agg(w.vx) FILTER (WHERE w.bound IS NULL)
          INTO least_bound, unsaid
          FROM (
            SELECT l.virtualtransaction AS vx,
                   CASE WHEN bool_or(l.locktype = 'advisory') THEN
                       (coalesce(min(l.objid::bigint) FILTER (
                            WHERE l.locktype = 'advisory' AND l.classid::bigint
                                  = (keys.hi::bigint & 4294967295)), 0) << 32)
                       | coalesce(min(l.objid::bigint) FILTER (
                            WHERE l.locktype = 'advisory' AND l.classid::bigint
                                  = (keys.lo::bigint & 4294967295)), 0)
                   END AS bound
              FROM pg_locks l
             WHERE l.granted AND l.pid IS DISTINCT FROM pg_backend_pid()
               AND l.database = here
               AND ((l.locktype = 'relation' AND l.relation = events
                     AND l.mode = 'RowExclusiveLock')
                    OR (l.locktype = 'advisory' AND l.objsubid = 2
                        AND l.classid::bigint IN (keys.hi::bigint & 4294967295,
                                                  keys.lo::bigint & 4294967295)))
             GROUP BY l.virtualtransaction
          ) w;
        IF unsaid IS NULL
           AND (least_bound IS NULL OR least_bound >= settled
                OR clock_timestamp() - started > interval '50 milliseconds') THEN
            RETURN least(settled, coalesce(least_bound, settled));
        END IF;
        IF clock_timestamp() - started > interval '30 seconds' THEN
            RAISE EXCEPTION USING ERRCODE = '55P03', MESSAGE = format(
                'the entries'' log has not settled: transaction(s) %s writing to it without '
                'saying where they append stayed open for 30 seconds',
                array_to_string(unsaid, ', '));
        END IF;
        PERFORM pg_sleep(pause);  -- reading pg_locks takes every lock partition: back off
        pause := least(pause * 2, 0.01);
    END LOOP;
END
$body$
-- ;;
-- The append function of the first authority version had no key arrays.
DROP FUNCTION IF EXISTS __S__.caseledger_append(
    __S__.stored_event_uuid[], jsonb, text[], bigint[], text[], bytea[], bytea[])
-- ;;
-- Append case entries: each checked against the session user's enrolment and the recorded
-- policy, the case's head (seq, prev_hash, type of the first entry), the time, and (when
-- entries are not encrypted) the stored entry itself; personal rows are written with them.
CREATE OR REPLACE FUNCTION __S__.caseledger_append(
    p_events __S__.stored_event_uuid[], p_meta jsonb,
    p_case text[], p_seq bigint[], p_field text[], p_value bytea[], p_salt bytea[],
    p_key_case text[], p_key_seq bigint[], p_key bytea[]
) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    me text := __S__.caseledger_me();
    clear boolean := __S__.caseledger_clear();
    operator boolean := __S__.caseledger_operator();
    my_roles text[];
    my_agency text;
    pol record;
    head_id uuid;
    head_seq bigint;
    head_hash text;
    head_rec timestamptz;
    head_regime text;
    ev __S__.stored_event_uuid;
    m jsonb;
    body jsonb;
    i int;
    ref text;
    seq bigint;
    kind text;
    regime_now text;
    regime_after text;
    rec timestamptz;
    nid bigint;
    approval text;
    approver text;
    target_seq bigint;
    screened boolean;
    -- The head of the case of the previous entry, carried to the next entry of the same
    -- case (a writer's entries come case by case): what the SELECT of the head would read,
    -- as the row was just written in this transaction, and no other transaction can
    -- commit a later entry of the case meanwhile (it would take this one's (case_ref, seq)).
    carried_ref text;
    -- The policy of the previous entry's role, read again only when the role changes (no
    -- statement of this function changes the policy; a policy change another session
    -- commits during the call is not seen by its later entries, as the caller's enrolment,
    -- read once per call, never was: the call is judged as of its start).
    pol_role text;
    pol_found boolean;
BEGIN
    IF jsonb_typeof(p_meta) IS DISTINCT FROM 'array'
       OR jsonb_array_length(p_meta) <> coalesce(array_length(p_events, 1), 0) THEN
        PERFORM __S__.caseledger_refuse('one envelope per entry is needed');
    END IF;
    PERFORM set_config('lock_timeout', '30s', true);
    -- No exclusive table lock: writers of different cases append at once (a case's own
    -- writers are serialised by its head check and the unique (case_ref, seq)); readers
    -- of the log read only its settled prefix (caseledger_settled_position, above).  The
    -- INSERT's own lock is taken here, first, as the exclusive one was: it conflicts with
    -- no other writer, and a writer still queues behind the DDL of a store being opened
    -- (its triggers on these tables) before it holds a lock on any other table, so the
    -- two cannot deadlock.
    LOCK TABLE __S__.caseledger_events IN ROW EXCLUSIVE MODE;
    -- ...and then says, before it takes a position, that each it takes is above the
    -- sequence's value now (caseledger_settled_position's point 2).
    PERFORM __S__.caseledger_settle_bound();
    SELECT roles, agency INTO my_roles, my_agency FROM __S__.caseledger_users WHERE name = me;
    IF NOT FOUND THEN
        PERFORM __S__.caseledger_refuse(format('%s is not enrolled in this store', me));
    END IF;
    screened := __S__.caseledger_screened(my_roles);
    FOR i IN 1 .. coalesce(array_length(p_events, 1), 0) LOOP
        ev := p_events[i];
        m := p_meta -> (i - 1);
        ref := m ->> 'case';
        seq := (m ->> 'seq')::bigint;
        kind := ev.topic;
        IF clear THEN
            body := convert_from(ev.state, 'UTF8')::jsonb;
            IF (body ->> 'case') IS DISTINCT FROM ref
               OR (body ->> 'seq')::bigint IS DISTINCT FROM seq
               OR (body ->> 'type') IS DISTINCT FROM kind
               OR (body ->> 'actor') IS DISTINCT FROM (m ->> 'actor')
               OR (body ->> 'role') IS DISTINCT FROM (m ->> 'role')
               OR (body ->> 'prev_hash') IS DISTINCT FROM (m ->> 'prev_hash')
               OR (body ->> 'hash') IS DISTINCT FROM (m ->> 'hash')
               OR (body ->> 'recorded_at') IS DISTINCT FROM (m ->> 'recorded_at')
               OR (body ->> 'agency') IS DISTINCT FROM (m ->> 'agency') THEN
                PERFORM __S__.caseledger_refuse(format(
                    'the stored entry %s#%s differs from the one checked', ref, seq));
            END IF;
        END IF;
        IF jsonb_typeof(m -> 'seq') IS DISTINCT FROM 'number'
           OR (clear AND jsonb_typeof(body -> 'seq') IS DISTINCT FROM 'number') THEN
            PERFORM __S__.caseledger_refuse('an entry''s seq must be a number');
        END IF;
        rec := __S__.caseledger_stamp(m -> 'recorded_at');
        IF (m ->> 'type') IS DISTINCT FROM kind OR ev.originator_version IS DISTINCT FROM seq THEN
            PERFORM __S__.caseledger_refuse(format('entry %s#%s is labelled inconsistently', ref, seq));
        END IF;
        IF (m ->> 'actor') IS DISTINCT FROM me THEN
            PERFORM __S__.caseledger_refuse(format(
                'an entry''s actor must be the session user %s, not %s', me, m ->> 'actor'));
        END IF;
        IF (m ->> 'role') IS NULL OR NOT ((m ->> 'role') = ANY (my_roles)) THEN
            PERFORM __S__.caseledger_refuse(format('%s is not enrolled as %s', me, m ->> 'role'));
        END IF;
        IF carried_ref IS NULL OR ref IS DISTINCT FROM carried_ref THEN
            SELECT p.originator_id, p.seq, p.hash, p.recorded_at, p.regime
                INTO head_id, head_seq, head_hash, head_rec, head_regime
                FROM __S__.caseledger_provenance p
                WHERE p.case_ref = ref ORDER BY p.seq DESC LIMIT 1;
        END IF;
        IF head_seq IS NULL THEN
            IF seq <> 1 OR kind <> 'CaseReferred' OR (m ->> 'prev_hash') <> repeat('0', 64) THEN
                RAISE EXCEPTION USING ERRCODE = '23505',
                    MESSAGE = format('case %s has no entries: %s#%s cannot follow', ref, ref, seq);
            END IF;
            regime_now := CASE WHEN clear THEN body ->> 'regime' ELSE m ->> 'regime' END;
            regime_after := regime_now;
        ELSE
            IF seq <> head_seq + 1 OR (m ->> 'prev_hash') IS DISTINCT FROM head_hash THEN
                RAISE EXCEPTION USING ERRCODE = '23505',
                    MESSAGE = format('case %s moved on: %s#%s is not next', ref, ref, seq);
            END IF;
            IF kind = 'CaseReferred' OR ev.originator_id <> head_id THEN
                PERFORM __S__.caseledger_refuse(format('case %s is referred already', ref));
            END IF;
            IF rec < head_rec THEN
                PERFORM __S__.caseledger_refuse(format(
                    '%s#%s would be recorded before the case''s previous entry', ref, seq));
            END IF;
            regime_now := head_regime;
            regime_after := head_regime;
            IF kind = 'EntryCorrected' THEN
                IF clear THEN
                    -- the rule of check_correction: the target is an earlier entry of this
                    -- case (CASE#n, n < seq) that is not itself a correction; the read
                    -- side applies a correction by its target's number alone
                    target_seq := CASE
                        WHEN left(coalesce(body ->> 'corrects', ''), length(ref) + 1) = ref || '#'
                             AND substr(body ->> 'corrects', length(ref) + 2) ~ '^[1-9][0-9]{0,17}$'
                        THEN substr(body ->> 'corrects', length(ref) + 2)::bigint END;
                    IF target_seq IS NULL OR target_seq >= seq OR NOT EXISTS (
                        SELECT 1 FROM __S__.caseledger_provenance p
                        WHERE p.originator_id = ev.originator_id AND p.seq = target_seq
                          AND p.type <> 'EntryCorrected'
                    ) THEN
                        PERFORM __S__.caseledger_refuse(format(
                            '%s#%s: a correction must name an earlier entry of case %s that is '
                            'not itself a correction, not %s', ref, seq, ref,
                            coalesce(body ->> 'corrects', 'nothing')));
                    END IF;
                    -- the rule of Case.apply_entry: the entry number after the last '#'
                    IF regexp_replace(body ->> 'corrects', '^.*#', '') = '1'
                       AND (body -> 'changes') ? 'regime' THEN
                        regime_after := body -> 'changes' ->> 'regime';
                    END IF;
                ELSE
                    regime_after := m ->> 'regime';
                END IF;
            END IF;
        END IF;
        IF regime_after IS NULL OR (m ->> 'regime') IS DISTINCT FROM regime_after THEN
            PERFORM __S__.caseledger_refuse(format('%s#%s: the case''s regime is misstated', ref, seq));
        END IF;
        IF NOT operator AND abs(extract(epoch FROM rec - clock_timestamp())) > 300 THEN
            PERFORM __S__.caseledger_refuse(format(
                '%s#%s: recorded_at %s is not the database''s time', ref, seq, m ->> 'recorded_at'));
        END IF;
        IF pol_role IS NULL OR pol_role IS DISTINCT FROM (m ->> 'role') THEN
            SELECT * INTO pol FROM __S__.caseledger_policy WHERE role = (m ->> 'role');
            pol_found := FOUND;
            pol_role := m ->> 'role';
        END IF;
        IF NOT pol_found OR NOT ('*' = ANY (pol.record) OR kind = ANY (pol.record)) THEN
            PERFORM __S__.caseledger_refuse(format(
                '%s (role %s) may not record %s entries', me, m ->> 'role', kind));
        END IF;
        IF pol.regimes IS NOT NULL AND NOT (regime_now = ANY (pol.regimes)) THEN
            PERFORM __S__.caseledger_refuse(format(
                '%s (role %s) may not record %s in a case under %s', me, m ->> 'role', kind,
                regime_now));
        END IF;
        IF pol.own_agency AND ((m ->> 'agency') IS NULL OR my_agency IS NULL
                               OR (m ->> 'agency') <> my_agency) THEN
            PERFORM __S__.caseledger_refuse(format(
                '%s (role %s for %s) may record only for their own agency', me, m ->> 'role',
                coalesce(my_agency, 'no agency')));
        END IF;
        -- Approval (a DecisionDelayed, or a correction of its approved_by): the approver
        -- must be a user enrolled with a role the policy lets approve that type in the
        -- case's regime, whoever records it.  Read from the clear entry when it is one
        -- (the envelope must say the same); in an encrypted store the envelope's
        -- approver is checked and kept, and verify compares it with the entry.
        approval := NULL;
        approver := NULL;
        IF clear THEN
            IF body ? 'approved_by' THEN
                approval := kind;
                approver := body ->> 'approved_by';
            ELSIF kind = 'EntryCorrected' AND jsonb_typeof(body -> 'changes') = 'object'
                  AND (body -> 'changes') ? 'approved_by' THEN
                target_seq := nullif(regexp_replace(body ->> 'corrects', '^.*#', ''), '')::bigint;
                IF EXISTS (
                    SELECT 1 FROM __S__.caseledger_events t
                    WHERE t.originator_id = ev.originator_id AND t.originator_version = target_seq
                      AND convert_from(t.state, 'UTF8')::jsonb ? 'approved_by'
                ) THEN
                    SELECT p.type INTO approval FROM __S__.caseledger_provenance p
                        WHERE p.originator_id = ev.originator_id AND p.seq = target_seq;
                    approver := body -> 'changes' ->> 'approved_by';
                END IF;
            END IF;
            IF (m ->> 'approval') IS DISTINCT FROM approval
               OR (m ->> 'approved_by') IS DISTINCT FROM approver THEN
                PERFORM __S__.caseledger_refuse(format(
                    'the approver of %s#%s differs from the one checked', ref, seq));
            END IF;
        ELSE
            approval := m ->> 'approval';
            approver := m ->> 'approved_by';
            IF (approval IS NULL AND EXISTS (
                    SELECT 1 FROM __S__.caseledger_policy WHERE kind = ANY (approves)))
               OR (approval IS NOT NULL AND kind <> 'EntryCorrected' AND approval <> kind) THEN
                PERFORM __S__.caseledger_refuse(format(
                    '%s#%s: a %s entry must name its approver', ref, seq, kind));
            END IF;
        END IF;
        IF clear AND screened THEN
            PERFORM __S__.caseledger_screen_entry(ref, seq, body);
        END IF;
        IF approval IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM __S__.caseledger_users u
            JOIN __S__.caseledger_policy p ON p.role = ANY (u.roles)
            WHERE u.name = approver AND approval = ANY (p.approves)
              AND (p.regimes IS NULL OR regime_now = ANY (p.regimes))
        ) THEN
            PERFORM __S__.caseledger_refuse(format(
                '%s#%s: %s may not approve a %s in a case under %s (approved_by must name a '
                'user enrolled with a role the policy lets approve it)', ref, seq,
                coalesce(approver, 'nobody'), approval, regime_now));
        END IF;
        IF clear THEN  -- its scope from the body read above (the trigger then has it)
            PERFORM __S__.caseledger_scope_body(ev.originator_id, seq, kind, body);
        END IF;
        INSERT INTO __S__.caseledger_events (originator_id, originator_version, topic, state)
            VALUES (ev.originator_id, ev.originator_version, ev.topic, ev.state)
            RETURNING notification_id INTO nid;
        INSERT INTO __S__.caseledger_provenance
            (originator_id, seq, case_ref, notification_id, type, actor, role, prev_hash, hash,
             recorded_at, regime, agency, approved_by)
            VALUES (ev.originator_id, seq, ref, nid, kind, me, m ->> 'role', m ->> 'prev_hash',
                    m ->> 'hash', rec, regime_after,
                    CASE WHEN clear THEN m ->> 'agency' END,  -- never in clear when sealed
                    approver);
        carried_ref := ref;
        head_id := ev.originator_id;
        head_seq := seq;
        head_hash := m ->> 'hash';
        head_rec := rec;
        head_regime := regime_after;
        RETURN NEXT nid;
    END LOOP;
    IF EXISTS (
        SELECT 1 FROM unnest(p_seq) WITH ORDINALITY AS x(seq, n)
        WHERE x.seq <> ALL (SELECT (q.m ->> 'seq')::bigint FROM jsonb_array_elements(p_meta) q(m))
    ) OR EXISTS (
        SELECT 1 FROM unnest(p_key_seq) AS x(seq)
        WHERE x.seq <> ALL (SELECT (q.m ->> 'seq')::bigint FROM jsonb_array_elements(p_meta) q(m))
    ) OR (clear AND EXISTS (
        SELECT 1 FROM unnest(p_case, p_seq) AS x(c, s)
        WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_meta) q(m)
                          WHERE q.m ->> 'case' = x.c AND (q.m ->> 'seq')::bigint = x.s)
    )) OR (clear AND EXISTS (
        SELECT 1 FROM unnest(p_key_case, p_key_seq) AS x(c, s)
        WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_meta) q(m)
                          WHERE q.m ->> 'case' = x.c AND (q.m ->> 'seq')::bigint = x.s)
    )) THEN
        PERFORM __S__.caseledger_refuse('personal rows and keys go only with the entries they belong to');
    END IF;
    IF coalesce(array_length(p_case, 1), 0) > 0 THEN
        INSERT INTO __S__.caseledger_personal
            SELECT * FROM unnest(p_case, p_seq, p_field, p_value, p_salt);
    END IF;
    IF coalesce(array_length(p_key_case, 1), 0) > 0 THEN
        INSERT INTO __S__.caseledger_personal_keys
            SELECT * FROM unnest(p_key_case, p_key_seq, p_key);
    END IF;
    RETURN;
END
$body$
-- ;;
-- Keep snapshots (a cache of a case's state at an entry), only for an entry of the chain
-- whose hash and regime they repeat; the ledger checks them again before use.
CREATE OR REPLACE FUNCTION __S__.caseledger_put_snapshots(p_snaps __S__.stored_event_uuid[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    sn __S__.stored_event_uuid;
    prov record;
    body jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM __S__.caseledger_users WHERE name = __S__.caseledger_me()) THEN
        PERFORM __S__.caseledger_refuse(format('%s is not enrolled in this store', __S__.caseledger_me()));
    END IF;
    FOREACH sn IN ARRAY p_snaps LOOP
        SELECT hash, regime INTO prov FROM __S__.caseledger_provenance
            WHERE originator_id = sn.originator_id AND seq = sn.originator_version;
        IF NOT FOUND THEN
            PERFORM __S__.caseledger_refuse('a snapshot must summarise an entry of the chain');
        END IF;
        IF __S__.caseledger_clear() THEN
            body := convert_from(sn.state, 'UTF8')::jsonb;
            IF (body -> 'state' ->> 'head_hash') IS DISTINCT FROM prov.hash
               OR (body -> 'state' ->> 'regime') IS DISTINCT FROM prov.regime THEN
                PERFORM __S__.caseledger_refuse('the snapshot does not match the chain');
            END IF;
        END IF;
        INSERT INTO __S__.caseledger_snapshots (originator_id, originator_version, topic, state)
            VALUES (sn.originator_id, sn.originator_version, sn.topic, sn.state)
            ON CONFLICT DO NOTHING;
    END LOOP;
END
$body$
-- ;;
-- A case's keys to its personal values, only for a session user enrolled with a role
-- the recorded policy allows export-personal: nobody else can read a key, whatever
-- their grants (users get no privilege on the key table itself).
CREATE OR REPLACE FUNCTION __S__.caseledger_personal_keys_of(p_case text)
RETURNS TABLE (seq bigint, key bytea)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM __S__.caseledger_users u
        JOIN __S__.caseledger_policy p ON p.role = ANY (u.roles)
        WHERE u.name = __S__.caseledger_me() AND 'export-personal' = ANY (p.actions)
    ) THEN
        RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format(
            'the database refuses %s the personal-data keys: export-personal needs a role '
            'the policy allows it, given by an admin', __S__.caseledger_me());
    END IF;
    RETURN QUERY SELECT k.seq, k.key FROM __S__.caseledger_personal_keys k
        WHERE k.case_ref = p_case ORDER BY k.seq;
END
$body$
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_personal_keys_of(text) FROM PUBLIC
-- ;;
-- The strings of a stored entry that the personal-data screen reads, as
-- ledger.personal_screen.hashed_strings yields them: every string, the keys (not the
-- commitments) of `personal` at the top or under `changes`, no structured ISO date, and
-- none of the envelope the ledger adds after its own screen (seq, actor, hashes ...).
CREATE OR REPLACE FUNCTION __S__.caseledger_body_strings(v jsonb, top boolean, path text)
RETURNS SETOF text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    k text;
    x jsonb;
BEGIN
    IF jsonb_typeof(v) = 'string' THEN
        RETURN NEXT v #>> '{}';
    ELSIF jsonb_typeof(v) = 'object' THEN
        FOR k, x IN SELECT * FROM jsonb_each(v) LOOP
            CONTINUE WHEN top AND k IN (
                'seq', 'recorded_at', 'actor', 'role', 'command_id', 'prev_hash', 'hash');
            IF k = 'personal' AND jsonb_typeof(x) = 'object' AND (top OR path = 'changes') THEN
                RETURN QUERY SELECT jsonb_object_keys(x);
                CONTINUE;
            END IF;
            CONTINUE WHEN k IN ('occurred_at', 'incident_date', 'aware_date', 'due',
                                'expected_by', 'planned_publication', 'from', 'to')
                AND jsonb_typeof(x) = 'string'
                AND (x #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:.+\-Z]*)?$';
            RETURN QUERY SELECT * FROM __S__.caseledger_body_strings(
                x, false, CASE WHEN top THEN k ELSE path || '.' || k END);
        END LOOP;
    ELSIF jsonb_typeof(v) = 'array' THEN
        FOR x IN SELECT * FROM jsonb_array_elements(v) LOOP
            RETURN QUERY SELECT * FROM __S__.caseledger_body_strings(x, false, path || '[]');
        END LOOP;
    END IF;
END
$body$
-- ;;
-- A text's folded words joined by single spaces, as ledger.personal_screen.folded makes
-- them: NFKC, lower case, accents (combining marks) dropped, split on everything that is
-- not a letter or a digit.  (Python's casefold and its Unicode letter classes are kept
-- for ASCII exactly and for accented Latin text; see docs/security.md.)
CREATE OR REPLACE FUNCTION __S__.caseledger_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $body$
    SELECT btrim(regexp_replace(
        CASE WHEN octet_length(t) = char_length(t) THEN lower(t)  -- ASCII
        ELSE normalize(regexp_replace(normalize(lower(normalize(t, NFKC)), NFKD),
                            '[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]',
                            '', 'g'), NFC) END,
        '[^[:alnum:]]+', ' ', 'g'))
$body$
-- ;;
-- Whether the database screens the entries of a writer with these roles: those of a
-- writer none of whose roles may export personal data (who cannot read the values, so
-- must not be able to publish them by writing them into the record).  A writer who may
-- export them can disclose them anyway, by design; their client screens with the values.
CREATE OR REPLACE FUNCTION __S__.caseledger_screened(p_roles text[]) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    RETURN NOT EXISTS (
        SELECT 1 FROM __S__.caseledger_policy p
        WHERE p.role = ANY (coalesce(p_roles, '{}')) AND 'export-personal' = ANY (p.actions));
END
$body$
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_screened(text[]) FROM PUBLIC
-- ;;
-- Refuse a stored entry of an unencrypted store whose strings hold a personal value of
-- its case that the screen digests know: the database's own check, so that a client
-- that skips the ledger's screen cannot write a name into the hashed record.
CREATE OR REPLACE FUNCTION __S__.caseledger_screen_entry(p_case text, p_seq bigint, p_body jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    IF EXISTS (SELECT 1 FROM __S__.caseledger_personal_screen c WHERE c.case_ref = p_case)
       AND cardinality(__S__.caseledger_personal_screen(p_case, ARRAY(
               SELECT __S__.caseledger_fold(s)
               FROM __S__.caseledger_body_strings(p_body, true, '') AS s))) > 0 THEN
        PERFORM __S__.caseledger_refuse(format(
            '%s#%s holds a personal value recorded for the case (the database''s screen '
            'found it); names and dates of birth go only in personal, never in the hashed '
            'record', p_case, p_seq));
    END IF;
END
$body$
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_screen_entry(text, bigint, jsonb) FROM PUBLIC
-- ;;
-- Keep the screen digests of the personal values of entries appended in this same
-- transaction (by caseledger_append, whose key rows they must accompany), never others.
CREATE OR REPLACE FUNCTION __S__.caseledger_put_screen(
    p_case text[], p_seq bigint[], p_salt bytea[], p_length int[], p_digest bytea[]
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    ref text;
    n bigint;
    st bytea;
BEGIN
    IF EXISTS (
        SELECT 1 FROM unnest(p_case, p_seq) AS x(c, s)
        WHERE NOT EXISTS (
            SELECT 1 FROM __S__.caseledger_personal_keys k
            WHERE k.case_ref = x.c AND k.seq = x.s
              AND k.xmin::text = (txid_current() % 4294967296)::text)
    ) THEN
        PERFORM __S__.caseledger_refuse(
            'screen digests go only with the personal values of an entry appended with them');
    END IF;
    INSERT INTO __S__.caseledger_personal_screen
        SELECT * FROM unnest(p_case, p_seq, p_salt, p_length, p_digest)
        ON CONFLICT DO NOTHING;
    IF __S__.caseledger_clear() AND __S__.caseledger_screened(
            (SELECT u.roles FROM __S__.caseledger_users u WHERE u.name = __S__.caseledger_me())) THEN
        -- the entries that gave these values, and the rest of this transaction's entries
        -- of their cases, are screened against them too
        FOR ref, n, st IN
            SELECT p.case_ref, p.seq, e.state
            FROM __S__.caseledger_provenance p
            JOIN __S__.caseledger_events e
              ON e.originator_id = p.originator_id AND e.originator_version = p.seq
            WHERE p.case_ref = ANY (p_case)
              AND p.xmin::text = (txid_current() % 4294967296)::text
        LOOP
            PERFORM __S__.caseledger_screen_entry(ref, n, convert_from(st, 'UTF8')::jsonb);
        END LOOP;
    END IF;
END
$body$
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_put_screen(text[], bigint[], bytea[], int[], bytea[])
    FROM PUBLIC
-- ;;
-- Which of the given texts hold a personal value of the case, answered without giving
-- the values: each text is its folded words joined by single spaces; every run of
-- consecutive words, joined with nothing (a name) and with single spaces (a date), whose
-- length is that of a kept digest is hashed with each of the case's salts and looked up.  Returns the (1-based) numbers of the texts that hold
-- one, nothing else.  For enrolled users only.
CREATE OR REPLACE FUNCTION __S__.caseledger_personal_screen(p_case text, p_texts text[])
RETURNS int[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    salts bytea[];
    digests bytea[];
    prefixes bytea[];
    lens int[];
    longest int;
    words text[];
    acc text;
    head text;
    head_hit boolean;
    glue text;
    hits int[] := '{}';
    t int;
    i int;
    j int;
    n int;
    s bytea;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM __S__.caseledger_users WHERE name = __S__.caseledger_me()) THEN
        PERFORM __S__.caseledger_refuse(format('%s is not enrolled in this store', __S__.caseledger_me()));
    END IF;
    IF (SELECT coalesce(sum(octet_length(x)), 0) FROM unnest(p_texts) AS x) > 4194304 THEN
        PERFORM __S__.caseledger_refuse('the texts to screen are larger than one entry can be');
    END IF;
    -- rows of length 0 are the digests of the needles' first 3 characters (a prefix
    -- filter); a store screened before they were kept has none, and is screened in full
    SELECT array_agg(DISTINCT c.salt), array_agg(DISTINCT c.length) FILTER (WHERE c.length > 0),
           max(c.length), array_agg(c.digest) FILTER (WHERE c.length > 0),
           array_agg(c.digest) FILTER (WHERE c.length = 0)
        INTO salts, lens, longest, digests, prefixes
        FROM __S__.caseledger_personal_screen c WHERE c.case_ref = p_case;
    IF longest IS NULL OR longest = 0 THEN
        RETURN hits;
    END IF;
    FOR t IN 1 .. coalesce(array_length(p_texts, 1), 0) LOOP
        words := string_to_array(p_texts[t], ' ');
        n := coalesce(array_length(words, 1), 0);
        <<starts>>
        FOR i IN 1 .. n LOOP
          FOREACH glue IN ARRAY ARRAY['', ' '] LOOP  -- a value's words run together, a date's not
            IF prefixes IS NOT NULL THEN
                -- a needle can begin only where the first 3 characters hash to a kept
                -- prefix (rows of length 0); a store screened before they were kept has
                -- none, and is screened in full
                IF glue = ' ' AND length(words[i]) >= 3 THEN
                    CONTINUE WHEN NOT head_hit;  -- the same 3 characters as with ''
                ELSE
                    head := left(array_to_string(words[i:i + 2], glue), 3);
                    head_hit := false;
                    FOREACH s IN ARRAY salts LOOP
                        IF sha256(s || convert_to(head, 'UTF8')) = ANY (prefixes) THEN
                            head_hit := true;
                            EXIT;
                        END IF;
                    END LOOP;
                    CONTINUE WHEN NOT head_hit;
                END IF;
            END IF;
            acc := NULL;
            FOR j IN i .. n LOOP
                acc := CASE WHEN acc IS NULL THEN words[j] ELSE acc || glue || words[j] END;
                EXIT WHEN length(acc) > longest;
                IF length(acc) = ANY (lens) THEN
                    FOREACH s IN ARRAY salts LOOP
                        IF sha256(s || convert_to(acc, 'UTF8')) = ANY (digests) THEN
                            hits := hits || t;
                            EXIT starts;
                        END IF;
                    END LOOP;
                END IF;
            END LOOP;
          END LOOP;
        END LOOP;
    END LOOP;
    RETURN hits;
END
$body$
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_personal_screen(text, text[]) FROM PUBLIC
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_register_append(jsonb, bytea[], text) FROM PUBLIC
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_append(
    __S__.stored_event_uuid[], jsonb, text[], bigint[], text[], bytea[], bytea[],
    text[], bigint[], bytea[]) FROM PUBLIC
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_put_snapshots(__S__.stored_event_uuid[]) FROM PUBLIC
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_clear() FROM PUBLIC
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_operator() FROM PUBLIC
-- ;;
-- ---------------------------------------------------------------------------------------
-- What each role reads (docs/security.md, "What each role sees"), enforced by row-level
-- security: a role whose enrolled roles all see 'own-agency' (a narrowed reader, as
-- projections/queries/visibility.py judges it from the same register) reads, by any SQL
-- its grants allow, only the entries the read facades would show it.
--
-- The snapshot table is made here, as the library makes it (the library's own statement,
-- run after this file, then finds it), so that its row security is in place from the
-- store's first open.
CREATE TABLE IF NOT EXISTS __S__.caseledger_snapshots (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    PRIMARY KEY (originator_id, originator_version))
WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
)
-- ;;
-- Each entry's reading scope, written by the database as the entry is appended (the
-- trigger below): its case, type, the agency it names as corrected (NULL for a
-- correction, whose scope is its target's), the entry a correction corrects, and whether
-- its body holds personal-data commitments (a referral's `personal`, a correction's
-- `changes.personal`).  Kept only for a store whose entries SQL can read (not encrypted
-- at rest; see caseledger_sees_all).
CREATE TABLE IF NOT EXISTS __S__.caseledger_scope (
    originator_id uuid NOT NULL,
    seq bigint NOT NULL,
    case_ref text NOT NULL,
    type text NOT NULL,
    agency text,
    corrects bigint,
    personal boolean NOT NULL,
    PRIMARY KEY (originator_id, seq)
)
-- ;;
CREATE INDEX IF NOT EXISTS caseledger_scope_agency ON __S__.caseledger_scope (agency)
-- ;;
-- The scope of one stored entry (the rule of visibility.Reader.records), from its body as
-- JSON: a correction that changes `agency` moves its target's scope to that agency.
-- Called by caseledger_append with the body it has already read, before it inserts the
-- entry (so the trigger below finds the scope written), and by caseledger_scope_entry.
CREATE OR REPLACE FUNCTION __S__.caseledger_scope_body(
    p_id uuid, p_seq bigint, p_topic text, b jsonb
) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    target text;
    target_seq bigint;
BEGIN
    IF p_topic = 'EntryCorrected' THEN
        target := regexp_replace(coalesce(b ->> 'corrects', ''), '^.*#', '');
        target_seq := CASE WHEN target ~ '^[0-9]{1,18}$' THEN target::bigint END;
        IF jsonb_typeof(b -> 'changes') = 'object' AND (b -> 'changes') ? 'agency' THEN
            UPDATE __S__.caseledger_scope SET agency = b -> 'changes' ->> 'agency'
                WHERE originator_id = p_id AND seq = target_seq;
        END IF;
    END IF;
    INSERT INTO __S__.caseledger_scope VALUES (
        p_id, p_seq, coalesce(b ->> 'case', ''), p_topic,
        CASE WHEN p_topic <> 'EntryCorrected' THEN b ->> 'agency' END,
        target_seq,
        coalesce(b ? 'personal' OR (jsonb_typeof(b -> 'changes') = 'object'
                                    AND (b -> 'changes') ? 'personal'), false))
        ON CONFLICT DO NOTHING;
END
$body$
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_scope_body(uuid, bigint, text, jsonb) FROM PUBLIC
-- ;;
-- The scope of one stored entry from its stored bytes (nothing for a store encrypted at
-- rest, whose entries SQL cannot read).
CREATE OR REPLACE FUNCTION __S__.caseledger_scope_entry(
    p_id uuid, p_seq bigint, p_topic text, p_state bytea
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    -- caseledger_clear() written out: a PL/pgSQL statement's plan is kept for the session
    IF coalesce((SELECT m.value FROM __S__.caseledger_meta m WHERE m.key = 'encryption'),
                'none'::bytea) <> 'none'::bytea THEN
        RETURN;
    END IF;
    PERFORM __S__.caseledger_scope_body(
        p_id, p_seq, p_topic, convert_from(p_state, 'UTF8')::jsonb);
END
$body$
-- ;;
REVOKE ALL ON FUNCTION __S__.caseledger_scope_entry(uuid, bigint, text, bytea) FROM PUBLIC
-- ;;
-- An entry inserted by caseledger_append has its scope already (written from the body it
-- read, just before); any other insert (the owner's own) gains it here.  The scope's key
-- is the entry's, and only the owner writes the scope table, so a row found there is
-- this entry's.
CREATE OR REPLACE FUNCTION __S__.caseledger_scope_appended() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    IF EXISTS (SELECT 1 FROM __S__.caseledger_scope s
               WHERE s.originator_id = NEW.originator_id AND s.seq = NEW.originator_version) THEN
        RETURN NULL;
    END IF;
    PERFORM __S__.caseledger_scope_entry(
        NEW.originator_id, NEW.originator_version, NEW.topic, NEW.state);
    RETURN NULL;
END
$body$
-- ;;
CREATE OR REPLACE TRIGGER caseledger_events_scope
    AFTER INSERT ON __S__.caseledger_events
    FOR EACH ROW EXECUTE FUNCTION __S__.caseledger_scope_appended()
-- ;;
-- A store whose entries were appended before the scope was kept gains it (once: the
-- owner's first open with this version), entry by entry in the order they were stored.
DO $fill$
DECLARE
    ev record;
BEGIN
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class
                                  WHERE oid = to_regclass(format('%I.caseledger_scope', __SCHEMA__))),
                   'USAGE')
       AND NOT EXISTS (SELECT 1 FROM __S__.caseledger_scope)
       AND EXISTS (SELECT 1 FROM __S__.caseledger_events) THEN
        FOR ev IN SELECT originator_id, originator_version, topic, state
                  FROM __S__.caseledger_events ORDER BY notification_id LOOP
            PERFORM __S__.caseledger_scope_entry(
                ev.originator_id, ev.originator_version, ev.topic, ev.state);
        END LOOP;
    END IF;
END
$fill$
-- ;;
-- Whether the acting role (caseledger_me()) reads every case and entry: not enrolled, or
-- enrolled with a role the recorded policy lets see 'all', or with no role the policy
-- names (as visibility.reader_of); and everyone in a store encrypted at rest, whose
-- entries the database cannot read to keep their scope (there the facades narrow, and
-- an entry is ciphertext to whoever lacks the store's key).  STABLE, and used in the
-- policies as a scalar subquery, so it is asked once per statement: a reader who sees
-- all pays nothing per row.  PL/pgSQL, with caseledger_me() and caseledger_clear()
-- written out, so its plans are kept for the session (an SQL function's are made again
-- at every statement: 2 ms a read).
CREATE OR REPLACE FUNCTION __S__.caseledger_sees_all() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    me text := CASE WHEN current_setting('role') = 'none' THEN session_user::text
                    ELSE current_setting('role') END;
BEGIN
    RETURN coalesce((SELECT m.value FROM __S__.caseledger_meta m WHERE m.key = 'encryption'),
                    'none'::bytea) <> 'none'::bytea
        OR NOT EXISTS (
            SELECT 1 FROM __S__.caseledger_users u JOIN __S__.caseledger_policy p
                ON p.role = ANY (u.roles)
            WHERE u.name = me)
        OR EXISTS (
            SELECT 1 FROM __S__.caseledger_users u JOIN __S__.caseledger_policy p
                ON p.role = ANY (u.roles)
            WHERE u.name = me AND p.sees IS DISTINCT FROM 'own-agency');
END
$body$
-- ;;
-- The entries a narrowed acting role may read, as visibility.Reader.records chooses them:
-- in each case where some entry names their enrolled agency (as corrected), the shared
-- entries (CaseReferred, CaseClosed, ReportPublished), the entries naming their agency,
-- and the corrections of those; `personal` says the entry's body holds commitments.
CREATE OR REPLACE FUNCTION __S__.caseledger_visible()
RETURNS TABLE (originator_id uuid, seq bigint, personal boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
ROWS 100 AS $body$
    WITH me AS (
        SELECT u.agency FROM __S__.caseledger_users u
        WHERE u.name = __S__.caseledger_me() AND u.agency IS NOT NULL
    ), theirs AS (
        SELECT DISTINCT s.originator_id FROM __S__.caseledger_scope s JOIN me ON s.agency = me.agency
    )
    SELECT s.originator_id, s.seq, s.personal
    FROM __S__.caseledger_scope s
    JOIN theirs ON theirs.originator_id = s.originator_id
    CROSS JOIN me
    LEFT JOIN __S__.caseledger_scope t
        ON s.type = 'EntryCorrected' AND t.originator_id = s.originator_id AND t.seq = s.corrects
    WHERE (s.type <> 'EntryCorrected'
           AND (s.type IN ('CaseReferred', 'CaseClosed', 'ReportPublished') OR s.agency = me.agency))
       OR (s.type = 'EntryCorrected'
           AND (t.agency = me.agency OR t.type IN ('CaseReferred', 'CaseClosed', 'ReportPublished')))
$body$
-- ;;
-- The cases of a narrowed acting role: those where some entry names their agency.
CREATE OR REPLACE FUNCTION __S__.caseledger_their_cases() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
    SELECT DISTINCT s.originator_id FROM __S__.caseledger_scope s
    JOIN __S__.caseledger_users u ON u.agency = s.agency
    WHERE u.name = __S__.caseledger_me()
$body$
-- ;;
-- The head of one of a narrowed acting role's cases (its last entry's number, hash and
-- time, and the case's regime), so that it can check an entry it records against the
-- case without reading the entries hidden from it (ledger/application/reading.py).
-- Nothing for a case not theirs.
CREATE OR REPLACE FUNCTION __S__.caseledger_case_head(p_case uuid)
RETURNS TABLE (seq bigint, hash text, recorded_at timestamptz, regime text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
    SELECT p.seq, p.hash, p.recorded_at, p.regime FROM __S__.caseledger_provenance p
    WHERE p.originator_id = p_case
      AND p_case IN (SELECT __S__.caseledger_their_cases())
      AND has_table_privilege(__S__.caseledger_me(), format('%I.caseledger_events', __SCHEMA__),
                              'SELECT')
    ORDER BY p.seq DESC LIMIT 1
$body$
-- ;;
-- A narrowed reader's entries with the personal-data commitments taken out of the
-- bodies that hold them (re-serialised by jsonb; `rebuilt` says which), in stored order:
-- the read path of the facades for such a reader, since row security cannot show part
-- of a row.  One case (its aggregate id) or, given NULL, all.  Nothing for a role that
-- reads all (it reads the table) or that lacks SELECT on the entries.
CREATE OR REPLACE FUNCTION __S__.caseledger_seen_entries(p_case uuid)
RETURNS TABLE (notification_id bigint, originator_id uuid, originator_version bigint,
               state bytea, rebuilt boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
    SELECT e.notification_id, e.originator_id, e.originator_version,
           CASE WHEN v.personal THEN convert_to((
               (convert_from(e.state, 'UTF8')::jsonb - 'personal')
               || CASE WHEN jsonb_typeof(convert_from(e.state, 'UTF8')::jsonb -> 'changes') = 'object'
                       THEN jsonb_build_object('changes',
                                (convert_from(e.state, 'UTF8')::jsonb -> 'changes') - 'personal')
                       ELSE '{}'::jsonb END)::text, 'UTF8')
                ELSE e.state END,
           v.personal
    FROM __S__.caseledger_visible() v
    JOIN __S__.caseledger_events e
        ON e.originator_id = v.originator_id AND e.originator_version = v.seq
    WHERE (p_case IS NULL OR v.originator_id = p_case)
      AND NOT __S__.caseledger_sees_all()
      AND has_table_privilege(__S__.caseledger_me(), format('%I.caseledger_events', __SCHEMA__),
                              'SELECT')
    ORDER BY e.notification_id
$body$
-- ;;
-- Row security on every table that holds a case's content, for whoever is not the
-- tables' owner (the owner, and so the SECURITY DEFINER functions above, which append
-- and check entries, are not subject to it: FORCE is not set).  The entries, their
-- provenance and their scope: the narrowed reader's own (no entry whose body holds
-- personal commitments: caseledger_seen_entries gives it screened).  Snapshots (whole
-- case states), personal values, the screen, the key table, the cross-case index, its
-- clock facts and tracking: nothing.  Applied to each table that exists and has none yet,
-- by its owner (run again from the index's creation).  Not the checkpoint's leaf hints,
-- which a checkpoint writes with COPY (refused under row security): docs/security.md.
CREATE OR REPLACE FUNCTION __S__.caseledger_guard_reads() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    t text;
    old name;
    rel regclass;
    cond text;
    sees_all text := format('(SELECT %I.caseledger_sees_all())', __SCHEMA__);
    visible text := format('SELECT v.originator_id, v.seq FROM %I.caseledger_visible() v',
                           __SCHEMA__);
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'caseledger_events', 'caseledger_provenance', 'caseledger_scope',
        'caseledger_snapshots', 'caseledger_personal', 'caseledger_personal_screen',
        'caseledger_personal_keys', 'case_index', 'case_milestones', 'case_clocks',
        'case_index_tracking'] LOOP
        rel := to_regclass(format('%I.%I', __SCHEMA__, t));
        CONTINUE WHEN rel IS NULL OR NOT pg_has_role(
            current_user, (SELECT relowner FROM pg_class WHERE oid = rel), 'USAGE');
        cond := CASE t
            WHEN 'caseledger_events' THEN format(
                '%s OR (originator_id, originator_version) IN (%s WHERE NOT v.personal)',
                sees_all, visible)
            WHEN 'caseledger_provenance' THEN format('%s OR (originator_id, seq) IN (%s)',
                                                     sees_all, visible)
            WHEN 'caseledger_scope' THEN format('%s OR (originator_id, seq) IN (%s)',
                                                sees_all, visible)
            ELSE sees_all END;
        -- the policy's name carries its version: an older one is replaced once
        FOR old IN SELECT polname FROM pg_policy
                   WHERE polrelid = rel AND polname LIKE 'caseledger_reads%'
                     AND polname <> 'caseledger_reads_1' LOOP
            EXECUTE format('DROP POLICY %I ON %s', old, rel);
        END LOOP;
        IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = rel AND polname = 'caseledger_reads_1') THEN
            EXECUTE format('CREATE POLICY caseledger_reads_1 ON %s USING (%s) WITH CHECK (%s)',
                           rel, cond, sees_all);
        END IF;
        IF NOT (SELECT relrowsecurity FROM pg_class WHERE oid = rel) THEN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', rel);
        END IF;
    END LOOP;
END
$body$
-- ;;
SELECT __S__.caseledger_guard_reads()
