-- ACD queues (docs/acd.md). The live state (agents, waiting callers, offers) is in the
-- account's Durable Object; D1 holds the configuration, read by the Worker and pushed to the
-- object. Flows name a queue by its `name` (unique per account) or its id.

CREATE TABLE queues (
  id                     TEXT PRIMARY KEY CHECK (id LIKE 'que\_%' ESCAPE '\'),
  account_id             TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  -- what flows write in `enqueue` ("sales"): 1-64 chars of A-Z a-z 0-9 _ -
  name                   TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^A-Za-z0-9_-]*'),
  strategy               TEXT NOT NULL DEFAULT 'longest_idle'
                           CHECK (strategy IN ('ring_all', 'longest_idle', 'round_robin', 'top_down', 'fewest_calls', 'least_talk_time', 'random')),
  -- JSON array of tier escalation rules: [{"level":2,"afterSecs":30}, ...]
  tiers                  TEXT NOT NULL DEFAULT '[]',
  offer_timeout_secs     INTEGER NOT NULL DEFAULT 20 CHECK (offer_timeout_secs BETWEEN 1 AND 600),
  wrapup_secs            INTEGER NOT NULL DEFAULT 10 CHECK (wrapup_secs BETWEEN 0 AND 3600),
  no_answer_penalty_secs INTEGER NOT NULL DEFAULT 30 CHECK (no_answer_penalty_secs BETWEEN 0 AND 3600),
  max_no_answer          INTEGER NOT NULL DEFAULT 3 CHECK (max_no_answer BETWEEN 0 AND 1000),     -- 0 = never auto-pause
  max_wait_secs          INTEGER DEFAULT 3600 CHECK (max_wait_secs IS NULL OR max_wait_secs BETWEEN 1 AND 86400),  -- NULL = no queue limit
  max_size               INTEGER CHECK (max_size IS NULL OR max_size >= 0),                         -- NULL = unlimited, 0 = closed
  hold_music             TEXT,                                                                     -- media key
  announce_every_secs    INTEGER CHECK (announce_every_secs IS NULL OR announce_every_secs BETWEEN 15 AND 3600),
  overflow_queue_id      TEXT REFERENCES queues(id) ON DELETE SET NULL CHECK (overflow_queue_id IS NULL OR overflow_queue_id <> id),
  created_at             INTEGER NOT NULL,
  UNIQUE (account_id, name)
);

-- Agents of a queue: lower tiers are offered first; position orders top_down / round_robin.
CREATE TABLE queue_members (
  queue_id   TEXT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  tier       INTEGER NOT NULL DEFAULT 1 CHECK (tier BETWEEN 1 AND 99),
  position   INTEGER NOT NULL DEFAULT 0 CHECK (position >= 0),
  PRIMARY KEY (queue_id, user_id)
);
CREATE INDEX queue_members_user ON queue_members(user_id);
