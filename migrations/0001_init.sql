-- callplane configuration schema (Cloudflare D1 / SQLite).
-- Ids are TypeIDs: prefix + '_' + 26 chars of lowercase base32 UUIDv7.
-- Times are Unix epoch milliseconds (INTEGER). JSON columns hold TEXT.

-- Accounts: one tenant (a PBX / contact center).
CREATE TABLE accounts (
  id                   TEXT PRIMARY KEY CHECK (id LIKE 'acc\_%' ESCAPE '\'),
  name                 TEXT NOT NULL,
  status               TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'disabled')),
  time_zone            TEXT NOT NULL DEFAULT 'UTC',
  -- concurrent external calls (inbound to numbers + outbound to trunks); 0 = no calls at all
  max_concurrent_calls INTEGER NOT NULL DEFAULT 10 CHECK (max_concurrent_calls >= 0),
  -- dialing policy
  country_code         TEXT NOT NULL DEFAULT '1',
  allow_international  INTEGER NOT NULL DEFAULT 0 CHECK (allow_international IN (0, 1)),
  allow_premium        INTEGER NOT NULL DEFAULT 0 CHECK (allow_premium IN (0, 1)),
  premium_prefixes     TEXT NOT NULL DEFAULT '[]',   -- JSON array of extra E.164 prefixes, e.g. ["+1900"]
  -- default caller id for outbound calls
  caller_id_name       TEXT,
  caller_id_number     TEXT,                          -- E.164
  -- digest algorithms offered in challenges, strongest first (RFC 8760). Legacy UAs may need 'MD5'.
  digest_algorithms    TEXT NOT NULL DEFAULT 'SHA-256,MD5',
  created_at           INTEGER NOT NULL
);

-- SIP domains (realms) → account.
CREATE TABLE sip_domains (
  domain     TEXT PRIMARY KEY COLLATE NOCASE,
  account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL
);
CREATE INDEX sip_domains_account ON sip_domains(account_id);

-- Users (people / extensions).
CREATE TABLE users (
  id               TEXT PRIMARY KEY CHECK (id LIKE 'usr\_%' ESCAPE '\'),
  account_id       TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  extension        TEXT NOT NULL,
  name             TEXT NOT NULL DEFAULT '',
  email            TEXT,
  caller_id_number TEXT,                              -- E.164 override for this user's outbound calls
  created_at       INTEGER NOT NULL,
  UNIQUE (account_id, extension)
);

-- SIP devices: digest credentials only as HA1 (MD5 and SHA-256), never the password.
CREATE TABLE devices (
  id          TEXT PRIMARY KEY CHECK (id LIKE 'dev\_%' ESCAPE '\'),
  account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  username    TEXT NOT NULL,
  realm       TEXT NOT NULL COLLATE NOCASE,
  ha1_md5     TEXT NOT NULL CHECK (length(ha1_md5) = 32),
  ha1_sha256  TEXT NOT NULL CHECK (length(ha1_sha256) = 64),
  enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at  INTEGER NOT NULL,
  UNIQUE (username, realm)
);
CREATE INDEX devices_user ON devices(user_id);

-- Carriers whose INVITEs are trusted by source address.
CREATE TABLE carriers (
  id         TEXT PRIMARY KEY CHECK (id LIKE 'car\_%' ESCAPE '\'),
  name       TEXT NOT NULL,
  enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at INTEGER NOT NULL
);
CREATE TABLE carrier_addresses (
  carrier_id TEXT NOT NULL REFERENCES carriers(id) ON DELETE CASCADE,
  cidr       TEXT NOT NULL,                           -- '203.0.113.0/24', '2001:db8::/32' or a single address
  port       INTEGER CHECK (port IS NULL OR (port BETWEEN 1 AND 65535)),
  PRIMARY KEY (carrier_id, cidr, port)
);

-- Business-hours calendars (see src/routing/calendar.rs for the JSON shapes).
CREATE TABLE calendars (
  id          TEXT PRIMARY KEY CHECK (id LIKE 'cal\_%' ESCAPE '\'),
  account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  name        TEXT NOT NULL,
  time_zone   TEXT NOT NULL,
  weekly      TEXT NOT NULL DEFAULT '{}',
  holidays    TEXT NOT NULL DEFAULT '[]',
  overrides   TEXT NOT NULL DEFAULT '[]',
  created_at  INTEGER NOT NULL
);

-- Call flows, versioned. A published version is immutable; running calls pin theirs.
CREATE TABLE flows (
  id                TEXT PRIMARY KEY CHECK (id LIKE 'flow\_%' ESCAPE '\'),
  account_id        TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  name              TEXT NOT NULL,
  published_version INTEGER,
  created_at        INTEGER NOT NULL
);
CREATE TABLE flow_versions (
  flow_id     TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
  version     INTEGER NOT NULL CHECK (version >= 1),
  definition  TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (flow_id, version)
);

-- Phone numbers (E.164) and where they go.
CREATE TABLE phone_numbers (
  id                TEXT PRIMARY KEY CHECK (id LIKE 'num\_%' ESCAPE '\'),
  e164              TEXT NOT NULL UNIQUE CHECK (e164 LIKE '+%'),
  account_id        TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  target_type       TEXT NOT NULL CHECK (target_type IN ('flow', 'user', 'external')),
  target_value      TEXT NOT NULL,                    -- flow id, user id, or E.164 number
  calendar_id       TEXT REFERENCES calendars(id) ON DELETE SET NULL,
  after_hours_type  TEXT CHECK (after_hours_type IS NULL OR after_hours_type IN ('flow', 'user', 'external')),
  after_hours_value TEXT,
  created_at        INTEGER NOT NULL
);
CREATE INDEX phone_numbers_account ON phone_numbers(account_id);

-- Trunks: per account, or wholesale default when account_id IS NULL. Lower priority number first.
CREATE TABLE trunks (
  id                TEXT PRIMARY KEY CHECK (id LIKE 'trk\_%' ESCAPE '\'),
  account_id        TEXT REFERENCES accounts(id) ON DELETE CASCADE,
  name              TEXT NOT NULL,
  priority          INTEGER NOT NULL DEFAULT 10,
  host              TEXT NOT NULL,
  port              INTEGER NOT NULL DEFAULT 5060 CHECK (port BETWEEN 1 AND 65535),
  transport         TEXT NOT NULL DEFAULT 'udp' CHECK (transport IN ('udp', 'tcp', 'tls')),
  number_format     TEXT NOT NULL DEFAULT 'e164' CHECK (number_format IN ('e164', 'e164_no_plus', 'national')),
  prefix            TEXT NOT NULL DEFAULT '',         -- tech prefix prepended to the formatted number
  -- caller id: 'account' (account/user default), 'fixed' (caller_id_number below), 'passthrough' (caller's From)
  caller_id_mode    TEXT NOT NULL DEFAULT 'account' CHECK (caller_id_mode IN ('account', 'fixed', 'passthrough')),
  caller_id_number  TEXT,
  fr_timer_ms       INTEGER NOT NULL DEFAULT 3000,
  fr_inv_timer_ms   INTEGER NOT NULL DEFAULT 30000,
  enabled           INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at        INTEGER NOT NULL
);
CREATE INDEX trunks_account ON trunks(account_id, priority);

-- Media nodes (FreeSWITCH + edge-agent).
CREATE TABLE media_nodes (
  id         TEXT PRIMARY KEY CHECK (id LIKE 'mn\_%' ESCAPE '\'),
  name       TEXT NOT NULL,
  sip_host   TEXT NOT NULL,
  sip_port   INTEGER NOT NULL DEFAULT 5060 CHECK (sip_port BETWEEN 1 AND 65535),
  transport  TEXT NOT NULL DEFAULT 'udp' CHECK (transport IN ('udp', 'tcp', 'tls')),
  status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draining', 'down')),
  created_at INTEGER NOT NULL
);

-- Call detail records, one per Call-ID (written when a dialog terminates).
CREATE TABLE cdrs (
  id           TEXT PRIMARY KEY CHECK (id LIKE 'cdr\_%' ESCAPE '\'),
  account_id   TEXT NOT NULL,
  call_id      TEXT NOT NULL UNIQUE,
  direction    TEXT NOT NULL DEFAULT '',
  from_uri     TEXT NOT NULL DEFAULT '',
  to_uri       TEXT NOT NULL DEFAULT '',
  started_at   INTEGER,
  answered_at  INTEGER,
  ended_at     INTEGER NOT NULL,
  duration_s   INTEGER NOT NULL DEFAULT 0,
  reason       TEXT NOT NULL DEFAULT '',   -- ended | failed | local
  disposition  TEXT NOT NULL DEFAULT ''    -- answered | failed | cancelled
);
CREATE INDEX cdrs_account ON cdrs(account_id, ended_at);

-- Service credentials: token = '<id>.<secret>'; only SHA-256(token) is stored.
CREATE TABLE credentials (
  id          TEXT PRIMARY KEY CHECK (id LIKE 'cred\_%' ESCAPE '\'),
  name        TEXT NOT NULL,
  role        TEXT NOT NULL CHECK (role IN ('sip-edge', 'media-node', 'agent-app', 'operator')),
  account_id  TEXT REFERENCES accounts(id) ON DELETE CASCADE,   -- NULL = platform-wide
  token_hash  TEXT NOT NULL CHECK (length(token_hash) = 64),
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
);

-- Who did what (operator actions such as a CAC reset).
CREATE TABLE audit_log (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  at         INTEGER NOT NULL,
  actor      TEXT NOT NULL,        -- credential id
  action     TEXT NOT NULL,
  account_id TEXT,
  detail     TEXT NOT NULL DEFAULT '{}'
);
