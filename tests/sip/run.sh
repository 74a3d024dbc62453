#!/usr/bin/env bash
# SIP end-to-end test: the built Worker (wrangler dev, local D1/DO), Kamailio 5.6 with
# deploy/kamailio/kamailio.cfg and sipp user agents, all on 127.0.0.1.
#
#   tests/sip/run.sh            (needs the built Worker: make worker)
#
# Every server is started here, bound to 127.0.0.1 and stopped by its PID (trap on EXIT);
# every sipp run and wait loop is bounded. Ports (override with the environment):
#   SIP_TEST_KAM_PORT    5160   Kamailio talking to the Worker
#   SIP_TEST_FAULT_PORT  5161   Kamailio talking to the fault responder
#   SIP_TEST_UA_BASE     5170   sipp user agents use UA_BASE .. UA_BASE+9 (RTP: 20000 + 10*(port-5000))
#   SIP_TEST_WORKER_PORT 8790   the Worker;  +1 the fault responder
# Last line: "N passed, N failed"; exit status 1 when anything failed.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/tests/sip"
SCEN="$HERE/scenarios"
CFG="$ROOT/deploy/kamailio/kamailio.cfg"
RUN="${SIP_TEST_RUN_DIR:-$ROOT/tests/.run/sip}"
# shellcheck source=/dev/null
source "$ROOT/scripts/env.sh"

KAM_PORT="${SIP_TEST_KAM_PORT:-5160}"
FAULT_KAM_PORT="${SIP_TEST_FAULT_PORT:-5161}"
UA="${SIP_TEST_UA_BASE:-5170}"
WORKER_PORT="${SIP_TEST_WORKER_PORT:-8790}"
FAULT_HTTP_PORT=$((WORKER_PORT + 1))
WORKER="http://127.0.0.1:$WORKER_PORT"

P_REG=$((UA + 0))      # REGISTER transactions
P_DEV2=$((UA + 1))     # device 1002's contact (a UAS)
P_CALL1=$((UA + 2))    # device 1001 placing calls
P_CALL2=$((UA + 3))
P_CALL3=$((UA + 4))
P_CARRIER=$((UA + 5))  # the trusted carrier's source port
P_MEDIA=$((UA + 6))    # media engine UAS
P_T1=$((UA + 7))       # trunk 1 (priority 1)
P_T2=$((UA + 8))       # trunk 2 (priority 2)
P_FAULT=$((UA + 9))    # UAC for fail-safe cases

DOMAIN="e2e.sip.test"
PW1="e2e-secret-1001"
PW2="e2e-secret-1002"
DID="+15550001111"
PSTN="+15559990000"
HTTP_TIMEOUT=2

PASSED=0
FAILED=0
PIDS=()

log() { printf '# %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf 'ok - %s\n' "$1"; }
fail() {
  FAILED=$((FAILED + 1))
  printf 'not ok - %s\n' "$1"
  shift
  for f in "$@"; do
    [ -s "$f" ] && { printf '#   --- %s (tail)\n' "${f#"$RUN"/}"; tail -n 25 "$f" | sed 's/^/#   /'; }
  done
  return 0
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  [ -f "$RUN/worker/worker.pid" ] && "$ROOT/scripts/worker-down.sh" "$RUN/worker" >/dev/null 2>&1
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
  exit $?
}

# ---------------------------------------------------------------- helpers

port_free() { # udp/tcp port not bound by anyone
  ! ss -Hlnu "sport = :$1" 2>/dev/null | grep -q . && ! ss -Hlnt "sport = :$1" 2>/dev/null | grep -q .
}

# start_kamailio NAME SIP_PORT URL TOKEN
start_kamailio() {
  local name="$1" port="$2" url="$3" token="$4"
  mkdir -p "$RUN/$name"
  kamailio -f "$CFG" -DD -E -Y "$RUN/$name" \
    -A "SIP_PORT=$port" -A "CALLPLANE_URL=\"$url\"" -A "CALLPLANE_TOKEN=\"$token\"" \
    -A "HTTP_TIMEOUT=$HTTP_TIMEOUT" -A "SIP_CHILDREN=2" -A "HTTP_WORKERS=4" \
    >"$RUN/$name.log" 2>&1 </dev/null &
  local pid=$!
  PIDS+=("$pid")
  echo "$pid" >"$RUN/$name.pid"
  # ready when it answers OPTIONS (bounded: 40 x 0.25 s)
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || return 1
    if sip_options "$port"; then return 0; fi
    sleep 0.25
  done
  return 1
}

sip_options() { # 0 when 127.0.0.1:$1 answers an OPTIONS with 200
  python3 - "$1" <<'EOF'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); s.settimeout(0.5)
lp = s.getsockname()[1]
msg = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-ping%d\r\n"
       "From: <sip:ping@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1:%d>\r\nCall-ID: ping-%d\r\nCSeq: 1 OPTIONS\r\n"
       "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n") % (port, lp, lp, port, lp)
s.sendto(msg.encode(), ("127.0.0.1", port))
try:
    data, _ = s.recvfrom(65535)
    sys.exit(0 if data.startswith(b"SIP/2.0 200") else 1)
except socket.timeout:
    sys.exit(1)
EOF
}

# sipp_cmd NAME SCENARIO LOCAL_PORT TARGET_PORT [sipp args...]: runs inside a subshell and execs
# sipp under `timeout` (so the subshell's pid is the one to signal); logs under $RUN/sipp/NAME.*
sipp_cmd() {
  local name="$1" scen="$2" lport="$3" tport="$4"
  shift 4
  local mp=$((20000 + 10 * (lport - 5000)))
  rm -f "$RUN/sipp/$name".*
  cd "$RUN/sipp" || exit 99
  exec timeout 45 sipp "127.0.0.1:$tport" -sf "$SCEN/$scen" -i 127.0.0.1 -p "$lport" -mp "$mp" \
    -nostdin -timeout 30s -timeout_error -max_recv_loops 100 \
    -trace_err -error_file "$RUN/sipp/$name.err" \
    -trace_msg -message_file "$RUN/sipp/$name.msg" \
    -trace_logs -log_file "$RUN/sipp/$name.log" "$@" >"$RUN/sipp/$name.out" 2>&1 </dev/null
}

# run in foreground; returns sipp's exit status
sipp_run() { (sipp_cmd "$@"); }

# run in background; its pid lands in SIPP_BG[NAME]
declare -A SIPP_BG
sipp_bg() {
  local name="$1"
  (sipp_cmd "$@") &
  SIPP_BG[$name]=$!
  PIDS+=("$!")
}
# sipp_wait NAME: exit status of a background sipp (bounded by its own `timeout 45`)
sipp_wait() { wait "${SIPP_BG[$1]}"; }
# sipp_stop NAME: stop a background sipp that may still be waiting
sipp_stop() { kill -TERM "${SIPP_BG[$1]}" 2>/dev/null; wait "${SIPP_BG[$1]}" 2>/dev/null; return 0; }

sipp_files() { echo "$RUN/sipp/$1.err" "$RUN/sipp/$1.out"; }

# wait_for_listen PORT: a background UAS bound its socket (bounded: 40 x 0.1 s)
wait_for_listen() {
  for _ in $(seq 1 40); do
    ss -Hlnu "sport = :$1" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  return 1
}

jget() { # jget KEY < json
  python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$1"
}

cac_active() {
  curl -fsS -m 5 -H "Authorization: Bearer $OP_TOKEN" "$WORKER/cac?accountId=$ACC" 2>/dev/null | jget active 2>/dev/null
}

# wait_cac N: the account's active slot count reaches N (bounded: 60 x 0.25 s)
wait_cac() {
  local want="$1" got=""
  for _ in $(seq 1 60); do
    got="$(cac_active)"
    [ "$got" = "$want" ] && return 0
    sleep 0.25
  done
  echo "cac active=$got, wanted $want" >"$RUN/cac.last"
  curl -sS -m 5 -H "Authorization: Bearer $OP_TOKEN" "$WORKER/cac?accountId=$ACC" >>"$RUN/cac.last" 2>&1
  return 1
}

# call_id NAME: the Call-ID a sipp UAC used
call_id() { sed -n 's/^Call-ID: *//p' "$RUN/sipp/$1.msg" 2>/dev/null | head -n 1 | tr -d '\r'; }

# released NAME REASON: Kamailio reported the call of sipp NAME as terminated/REASON and the Worker
# answered that it released a slot (bounded: 40 x 0.25 s)
released() {
  local cid
  cid="$(call_id "$1")"
  [ -n "$cid" ] || return 1
  for _ in $(seq 1 40); do
    grep -F "\"callId\":\"$cid\"" "$KLOG" | grep -F '"state":"terminated"' | grep -F "\"reason\":\"$2\"" \
      | grep -qF '"released":true' && return 0
    sleep 0.25
  done
  return 1
}

admin() {
  (cd "$ROOT" && cargo run -q -p callplane-cli -- --local --persist-to "$RUN/worker" "$@")
}

# ---------------------------------------------------------------- preflight

rm -rf "$RUN"
mkdir -p "$RUN/sipp"
for tool in kamailio sipp python3 curl ss timeout; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool"; FAILED=1; finish; }
done
for p in "$KAM_PORT" "$FAULT_KAM_PORT" $(seq "$UA" $((UA + 9))) "$WORKER_PORT" "$FAULT_HTTP_PORT"; do
  port_free "$p" || { echo "port $p on 127.0.0.1 is in use; set SIP_TEST_* to move the test"; FAILED=1; finish; }
done

if kamailio -c -f "$CFG" -A "SIP_PORT=$KAM_PORT" >"$RUN/cfgcheck.log" 2>&1; then
  pass "kamailio.cfg passes kamailio -c"
else
  fail "kamailio.cfg passes kamailio -c" "$RUN/cfgcheck.log"
  finish
fi

# ---------------------------------------------------------------- fail safe (fault responder)
# A Kamailio wired to a responder that is slow / non-200 / non-JSON / nonsensical must refuse
# INVITE with 503 and REGISTER with 500. Runs before the Worker: needs none of it.

MODEFILE="$RUN/fault.mode"
echo http503 >"$MODEFILE"
python3 "$HERE/fault_server.py" "$FAULT_HTTP_PORT" "$MODEFILE" >"$RUN/fault_server.log" 2>&1 </dev/null &
PIDS+=("$!")
for _ in $(seq 1 40); do curl -fsS -m 1 "http://127.0.0.1:$FAULT_HTTP_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done

if start_kamailio kam-fault "$FAULT_KAM_PORT" "http://127.0.0.1:$FAULT_HTTP_PORT" "fault-test-token"; then
  for mode in slow http401 http503 nonjson unknown; do
    echo "$mode" >"$MODEFILE"
    t0=$(date +%s%N)
    if sipp_run "fault-$mode-invite" uac_failsafe.xml "$P_FAULT" "$FAULT_KAM_PORT" -m 1 \
         -key user 1001 -key domain "$DOMAIN" -s 1002; then
      ms=$(( ($(date +%s%N) - t0) / 1000000 ))
      if [ "$mode" = slow ] && [ "$ms" -gt $(( (HTTP_TIMEOUT + 3) * 1000 )) ]; then
        fail "callplane $mode: INVITE answered 503 only after ${ms} ms (timeout ${HTTP_TIMEOUT} s)"
      else
        pass "callplane $mode: INVITE -> 503 (${ms} ms)"
      fi
    else
      fail "callplane $mode: INVITE -> 503" $(sipp_files "fault-$mode-invite") "$RUN/kam-fault.log"
    fi
    if sipp_run "fault-$mode-register" register_failsafe.xml "$P_FAULT" "$FAULT_KAM_PORT" -m 1 \
         -key user 1001 -key domain "$DOMAIN"; then
      pass "callplane $mode: REGISTER -> 500"
    else
      fail "callplane $mode: REGISTER -> 500" $(sipp_files "fault-$mode-register") "$RUN/kam-fault.log"
    fi
  done
  # what Kamailio sent: bearer credential, JSON, the raw SIP facts
  if python3 - "$MODEFILE.log" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows, "no requests seen"
for r in rows:
    assert r["path"] == "/auth", r["path"]
    assert r["authorization"] == "Bearer fault-test-token", r["authorization"]
    assert r["contentType"] == ["application/json"], r["contentType"]  # exactly one
    b = json.loads(r["body"])
    for k in ("method", "callId", "sourceIp", "sourcePort", "transport", "fromUser", "fromDomain",
              "toUser", "toDomain", "ruri", "userAgent", "authorization", "username", "realm",
              "nonce", "uri", "response", "algorithm", "cnonce", "opaque", "qop", "nc"):
        assert k in b, "missing " + k
    assert b["sourceIp"] == "127.0.0.1" and isinstance(b["sourcePort"], int)
    assert b["method"] in ("INVITE", "REGISTER") and b["authorization"] == ""
EOF
  then
    pass "/auth requests carry the bearer token, JSON content type and every contract field"
  else
    fail "/auth requests carry the bearer token, JSON content type and every contract field" "$MODEFILE.log"
  fi
else
  fail "fault Kamailio starts" "$RUN/kam-fault.log"
fi

# ---------------------------------------------------------------- the Worker + data

if [ ! -f "$ROOT/build/worker/shim.mjs" ]; then
  fail "the Worker is built (build/worker/shim.mjs; run make worker)"
  finish
fi
if ! "$ROOT/scripts/worker-up.sh" --port "$WORKER_PORT" --state "$RUN/worker" >"$RUN/worker-up.log" 2>&1; then
  fail "Worker starts on $WORKER" "$RUN/worker-up.log"
  finish
fi
pass "Worker answers /health on $WORKER"

# provision: runs in a subshell, leaves the ids in $RUN/ids.env
provision() {
  set -e
  local out="$RUN/provision.json"
  : >"$out"
  a() { admin "$@" | tee -a "$out"; }
  local acc usr1 usr2 dev1 dev2 car t1 t2 mn flow num edge op
  acc=$(a account create --name "SIP e2e" --domain "$DOMAIN" --max-calls 2 --digest-algorithms MD5 | jget id)
  usr1=$(a user create --account "$acc" --extension 1001 | jget id)
  usr2=$(a user create --account "$acc" --extension 1002 | jget id)
  dev1=$(a device create --account "$acc" --extension 1001 --username 1001 --password "$PW1" | jget id)
  dev2=$(a device create --account "$acc" --extension 1002 --username 1002 --password "$PW2" | jget id)
  car=$(a carrier create --name "e2e carrier" --address 127.0.0.1/32 --port "$P_CARRIER" | jget id)
  t1=$(a trunk create --account "$acc" --name "e2e trunk 1" --host 127.0.0.1 --port "$P_T1" --priority 1 | jget id)
  t2=$(a trunk create --account "$acc" --name "e2e trunk 2" --host 127.0.0.1 --port "$P_T2" --priority 2 | jget id)
  mn=$(a media-node create --name "e2e media" --host 127.0.0.1 --port "$P_MEDIA" | jget id)
  printf '%s\n' '{"version":1,"start":"welcome","nodes":{"welcome":{"type":"play","tts":{"text":"Hello"},"next":"bye"},"bye":{"type":"hangup"}}}' >"$RUN/flow.json"
  flow=$(a flow create --account "$acc" --name "e2e flow" --file "$RUN/flow.json" | jget id)
  num=$(a number create --account "$acc" --e164 "$DID" --target "flow:$flow" | jget id)
  edge=$(a credential create --name "e2e sip-edge" --role sip-edge | jget token)
  op=$(a credential create --name "e2e operator" --role operator | jget token)
  for v in acc usr1 usr2 dev1 dev2 car t1 t2 mn flow num edge op; do
    [ -n "${!v}" ] || { echo "provision: empty $v"; return 1; }
  done
  printf 'ACC=%q\nFLOW=%q\nEDGE_TOKEN=%q\nOP_TOKEN=%q\n' "$acc" "$flow" "$edge" "$op" >"$RUN/ids.env"
}
if (provision) >"$RUN/provision.log" 2>&1 && [ -s "$RUN/ids.env" ]; then
  # shellcheck source=/dev/null
  source "$RUN/ids.env"
  pass "provisioned account $ACC (max 2 calls, MD5), devices, carrier, 2 trunks, media node, flow, DID"
else
  fail "provisioning with callplane-admin" "$RUN/provision.log"
  finish
fi

if start_kamailio kam "$KAM_PORT" "$WORKER" "$EDGE_TOKEN"; then
  pass "Kamailio up on udp:127.0.0.1:$KAM_PORT"
else
  fail "Kamailio up on udp:127.0.0.1:$KAM_PORT" "$RUN/kam.log"
  finish
fi
KLOG="$RUN/kam.log"

# ---------------------------------------------------------------- registration

if sipp_run reg-1001 register.xml "$P_REG" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" \
     -key contact_port "$P_CALL1" -key expires 300 -au 1001 -ap "$PW1"; then
  pass "REGISTER 1001 with digest -> 200"
else
  fail "REGISTER 1001 with digest -> 200" $(sipp_files reg-1001) "$KLOG"
fi

if sipp_run reg-bad register_forbidden.xml "$P_REG" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" \
     -key contact_port "$P_CALL1" -key expires 300 -au 1001 -ap "wrong-$PW1"; then
  pass "REGISTER with a wrong password -> 403"
else
  fail "REGISTER with a wrong password -> 403" $(sipp_files reg-bad) "$KLOG"
fi

# 1002 registers the contact where its UAS listens
if sipp_run reg-1002 register.xml "$P_REG" "$KAM_PORT" -m 1 -key user 1002 -key domain "$DOMAIN" \
     -key contact_port "$P_DEV2" -key expires 300 -au 1002 -ap "$PW2"; then
  pass "REGISTER 1002 (contact = its UAS) -> 200"
else
  fail "REGISTER 1002 (contact = its UAS) -> 200" $(sipp_files reg-1002) "$KLOG"
fi

# Two devices challenged at the same instant must both get in: each challenge needs its own nonce
# (nonce-count replay protection keyed by nonce must not confuse two clients).
sipp_bg same1 register.xml "$P_CALL2" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" \
  -key contact_port "$P_CALL1" -key expires 300 -au 1001 -ap "$PW1"
sipp_bg same2 register.xml "$P_CALL3" "$KAM_PORT" -m 1 -key user 1002 -key domain "$DOMAIN" \
  -key contact_port "$P_DEV2" -key expires 300 -au 1002 -ap "$PW2"
sipp_wait same1; rc1=$?
sipp_wait same2; rc2=$?
n1="$(sed -n 's/^WWW-Authenticate:.*nonce="\([^"]*\)".*/\1/p' "$RUN/sipp/same1.msg" 2>/dev/null | head -n 1)"
n2="$(sed -n 's/^WWW-Authenticate:.*nonce="\([^"]*\)".*/\1/p' "$RUN/sipp/same2.msg" 2>/dev/null | head -n 1)"
if [ "$rc1" = 0 ] && [ "$rc2" = 0 ]; then
  pass "two REGISTERs challenged at the same instant both -> 200"
else
  same="different nonces"; [ -n "$n1" ] && [ "$n1" = "$n2" ] && same="SAME nonce $n1"
  fail "two REGISTERs challenged at the same instant both -> 200 (rc $rc1/$rc2, $same)" $(sipp_files same1) $(sipp_files same2)
fi

# ---------------------------------------------------------------- device -> device

sipp_bg dev2 uas_answer.xml "$P_DEV2" "$KAM_PORT" -m 1
wait_for_listen "$P_DEV2"
sipp_run call-internal uac_call.xml "$P_CALL1" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" \
  -s 1002 -au 1001 -ap "$PW1" -d 500
rc_uac=$?
sipp_wait dev2
rc_uas=$?
if [ "$rc_uac" = 0 ] && [ "$rc_uas" = 0 ]; then
  pass "device 1001 -> device 1002: challenged, answered, BYE"
else
  fail "device 1001 -> device 1002 (uac=$rc_uac uas=$rc_uas)" $(sipp_files call-internal) $(sipp_files dev2) "$KLOG"
fi
if grep -qi '^Proxy-Authorization' "$RUN/sipp/dev2.msg" 2>/dev/null; then
  fail "caller credentials are not forwarded to the callee" "$RUN/sipp/dev2.msg"
else
  pass "caller credentials are not forwarded to the callee"
fi

# ---------------------------------------------------------------- carrier -> DID -> flow -> media

sipp_bg media uas_media.xml "$P_MEDIA" "$KAM_PORT" -m 1
wait_for_listen "$P_MEDIA"
sipp_run call-carrier uac_carrier.xml "$P_CARRIER" "$KAM_PORT" -m 1 -key user +15557770000 \
  -key domain 127.0.0.1 -s "$DID" -d 500
rc_uac=$?
sipp_wait media
rc_uas=$?
if [ "$rc_uac" = 0 ] && [ "$rc_uas" = 0 ]; then
  pass "carrier -> DID $DID -> flow -> media engine answered"
else
  fail "carrier -> DID -> flow -> media (uac=$rc_uac uas=$rc_uas)" $(sipp_files call-carrier) $(sipp_files media) "$KLOG"
fi
if grep -q "received X-Account-Id=$ACC X-Flow-Id=$FLOW\$" "$RUN/sipp/media.log" 2>/dev/null; then
  pass "media engine got X-Account-Id: $ACC and X-Flow-Id: $FLOW"
else
  fail "media engine got X-Account-Id: $ACC and X-Flow-Id: $FLOW" "$RUN/sipp/media.log" "$RUN/sipp/media.msg"
fi
if [ -s "$RUN/sipp/media.msg" ] && ! grep -qi 'spoofed' "$RUN/sipp/media.msg" \
   && [ "$(grep -ci '^X-Account-Id:' "$RUN/sipp/media.msg")" = 1 ]; then
  pass "caller-supplied X-Account-Id / X-Flow-Id are stripped"
else
  fail "caller-supplied X-Account-Id / X-Flow-Id are stripped" "$RUN/sipp/media.msg"
fi
if wait_cac 0; then pass "slot released after the carrier call's BYE"; else fail "slot released after the carrier call's BYE" "$RUN/cac.last" "$KLOG"; fi
if released call-carrier ended; then pass "carrier call: terminated/ended event released its slot"; else fail "carrier call: terminated/ended event released its slot" "$KLOG"; fi

# ---------------------------------------------------------------- outbound failover

sipp_bg t1 uas_503.xml "$P_T1" "$KAM_PORT" -m 1
sipp_bg t2 uas_answer.xml "$P_T2" "$KAM_PORT" -m 1
wait_for_listen "$P_T1"
wait_for_listen "$P_T2"
sipp_run call-out uac_call.xml "$P_CALL1" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" \
  -s "$PSTN" -au 1001 -ap "$PW1" -d 500
rc_uac=$?
sipp_wait t1
rc_t1=$?
sipp_wait t2
rc_t2=$?
if [ "$rc_uac" = 0 ] && [ "$rc_t1" = 0 ] && [ "$rc_t2" = 0 ]; then
  pass "outbound $PSTN: trunk 1 answers 503, failover to trunk 2 answers"
else
  fail "outbound failover (uac=$rc_uac trunk1=$rc_t1 trunk2=$rc_t2)" $(sipp_files call-out) $(sipp_files t1) $(sipp_files t2) "$KLOG"
fi
if wait_cac 0; then pass "slot released after the outbound call"; else fail "slot released after the outbound call" "$RUN/cac.last" "$KLOG"; fi
if released call-out ended; then pass "outbound call: terminated/ended event released its slot"; else fail "outbound call: terminated/ended event released its slot" "$KLOG"; fi

# ---------------------------------------------------------------- account limit (2)

sipp_bg media2 uas_media.xml "$P_MEDIA" "$KAM_PORT" -m 2
wait_for_listen "$P_MEDIA"
sipp_bg held1 uac_call.xml "$P_CALL1" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" -s "$DID" -au 1001 -ap "$PW1" -d 6000
sleep 0.3 # not the same challenge instant: that case has its own test below
sipp_bg held2 uac_call.xml "$P_CALL2" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" -s "$DID" -au 1001 -ap "$PW1" -d 6000
if wait_cac 2; then
  pass "two concurrent calls hold two slots"
  if sipp_run third uac_limit.xml "$P_CALL3" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" \
       -s "$DID" -au 1001 -ap "$PW1"; then
    pass "third concurrent call refused by the account limit of 2 (486)"
  else
    fail "third concurrent call refused by the account limit of 2 (486)" $(sipp_files third) "$KLOG"
  fi
else
  fail "two concurrent calls hold two slots" "$RUN/cac.last" $(sipp_files held1) $(sipp_files held2) "$KLOG"
fi
sipp_wait held1; rc1=$?
sipp_wait held2; rc2=$?
sipp_wait media2; rc3=$?
if [ "$rc1" = 0 ] && [ "$rc2" = 0 ] && [ "$rc3" = 0 ]; then
  pass "the two admitted calls complete"
else
  fail "the two admitted calls complete (held1=$rc1 held2=$rc2 media=$rc3)" $(sipp_files held1) $(sipp_files held2) $(sipp_files media2)
fi
if wait_cac 0; then pass "both slots released after BYE"; else fail "both slots released after BYE" "$RUN/cac.last" "$KLOG"; fi

# ---------------------------------------------------------------- callee busy releases the slot

sipp_bg busy uas_busy.xml "$P_T1" "$KAM_PORT" -m 1
wait_for_listen "$P_T1"
sipp_run call-busy uac_busy.xml "$P_CALL1" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" \
  -s "$PSTN" -au 1001 -ap "$PW1"
rc_uac=$?
sipp_wait busy
rc_uas=$?
if [ "$rc_uac" = 0 ] && [ "$rc_uas" = 0 ]; then
  pass "486 from the callee goes back to the caller (no failover)"
else
  fail "486 from the callee goes back to the caller (uac=$rc_uac uas=$rc_uas)" $(sipp_files call-busy) $(sipp_files busy) "$KLOG"
fi
if wait_cac 0; then pass "slot released after busy"; else fail "slot released after busy" "$RUN/cac.last" "$KLOG"; fi
if released call-busy failed; then pass "busy call: terminated/failed event released its slot"; else fail "busy call: terminated/failed event released its slot" "$KLOG"; fi

# ---------------------------------------------------------------- CANCEL releases the slot

sipp_bg ring uas_ring_cancel.xml "$P_T1" "$KAM_PORT" -m 1
wait_for_listen "$P_T1"
sipp_run call-cancel uac_cancel.xml "$P_CALL1" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" \
  -s "$PSTN" -au 1001 -ap "$PW1"
rc_uac=$?
sipp_wait ring
rc_uas=$?
if [ "$rc_uac" = 0 ] && [ "$rc_uas" = 0 ]; then
  pass "CANCEL while ringing: 200 + 487 relayed"
else
  fail "CANCEL while ringing (uac=$rc_uac uas=$rc_uas)" $(sipp_files call-cancel) $(sipp_files ring) "$KLOG"
fi
if wait_cac 0; then pass "slot released after CANCEL"; else fail "slot released after CANCEL" "$RUN/cac.last" "$KLOG"; fi
if released call-cancel failed; then pass "cancelled call: terminated/failed event released its slot"; else fail "cancelled call: terminated/failed event released its slot" "$KLOG"; fi

# CANCEL right after 100 Trying: most likely while Kamailio is still asking callplane (tm answers
# 487 itself and the async worker reports the admitted call), else relayed to the ringing trunk.
sipp_bg ring2 uas_ring_cancel.xml "$P_T1" "$KAM_PORT" -m 1
wait_for_listen "$P_T1"
sipp_run call-early uac_cancel_early.xml "$P_CALL1" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" \
  -s "$PSTN" -au 1001 -ap "$PW1"
rc_uac=$?
sipp_stop ring2
if [ "$rc_uac" = 0 ]; then
  pass "CANCEL right after the INVITE: 200 + 487"
else
  fail "CANCEL right after the INVITE (uac=$rc_uac)" $(sipp_files call-early) "$KLOG"
fi
if wait_cac 0; then pass "slot released after an immediate CANCEL"; else fail "slot released after an immediate CANCEL" "$RUN/cac.last" "$KLOG"; fi
if released call-early failed; then pass "immediately cancelled call: terminated/failed event released its slot"; else fail "immediately cancelled call: terminated/failed event released its slot" "$KLOG"; fi

# every register/dialog event was accepted by the Worker (the drain logs failures), and each
# admitted call that ended was reported
sleep 0.5
if grep -q 'presence/event failed' "$KLOG"; then
  fail "callplane accepted every presence/dialog event" "$KLOG"
else
  pass "callplane accepted every presence/dialog event"
fi

# ---------------------------------------------------------------- callplane down

"$ROOT/scripts/worker-down.sh" "$RUN/worker" >/dev/null 2>&1
for _ in $(seq 1 40); do curl -fsS -m 1 "$WORKER/health" >/dev/null 2>&1 || break; sleep 0.25; done
if sipp_run down-invite uac_failsafe.xml "$P_FAULT" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN" -s 1002; then
  pass "callplane down: INVITE -> 503"
else
  fail "callplane down: INVITE -> 503" $(sipp_files down-invite) "$KLOG"
fi
if sipp_run down-register register_failsafe.xml "$P_FAULT" "$KAM_PORT" -m 1 -key user 1001 -key domain "$DOMAIN"; then
  pass "callplane down: REGISTER -> 500"
else
  fail "callplane down: REGISTER -> 500" $(sipp_files down-register) "$KLOG"
fi

if grep -qE 'CRITICAL|BUG|segfault' "$KLOG" "$RUN/kam-fault.log" 2>/dev/null; then
  fail "Kamailio logged no CRITICAL/BUG" "$KLOG"
else
  pass "Kamailio logged no CRITICAL/BUG"
fi

finish
