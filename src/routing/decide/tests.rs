use super::*;
use crate::cac::lease::LeaseSet;
use crate::model::{CalendarRecord, MediaNode, User};
use crate::routing::calendar::Calendar;
use crate::testutil::block_on;
use std::cell::RefCell;

const ACC: &str = "acc_01jf18ah3jeb5w6dfp27sgjsbt";
const DEV: &str = "dev_01jf18ah3jeb5w6dfp27sgjsbt";
/// Bob's device (user 1002).
const DEV2: &str = "dev_01jf18ah3jeb5w6dfp27sgjsbv";
/// A device of another account.
const DEV_OTHER: &str = "dev_01jf18ah3jeb5w6dfp27sgjsbw";
const CAR: &str = "car_01jf18ah3jeb5w6dfp27sgjsbt";
const FLOW: &str = "flow_01jf18ah3jeb5w6dfp27sgjsbt";
/// 2026-11-18 15:00 UTC = Wednesday 10:00 in New York (open).
const WED_OPEN: u64 = 1_795_014_000_000;
/// 2026-11-22 15:00 UTC = Sunday (closed).
const SUN: u64 = 1_795_359_600_000;

struct Mem {
    account: Account,
    numbers: Vec<PhoneNumber>,
    users: Vec<User>,
    trunks: Vec<Trunk>,
    wholesale: Vec<Trunk>,
    nodes: Vec<MediaNode>,
    calendar: Option<CalendarRecord>,
    leases: RefCell<LeaseSet>,
}

impl RouteStore for Mem {
    async fn account(&self, id: &str) -> ApiResult<Option<Account>> {
        Ok((id == self.account.id).then(|| self.account.clone()))
    }
    async fn primary_domain(&self, _: &str) -> ApiResult<Option<String>> {
        Ok(Some("acme.sip.io".into()))
    }
    async fn number(&self, e164: &str) -> ApiResult<Option<PhoneNumber>> {
        Ok(self.numbers.iter().find(|n| n.e164 == e164).cloned())
    }
    async fn user(&self, id: &str) -> ApiResult<Option<User>> {
        Ok(self.users.iter().find(|u| u.id == id).cloned())
    }
    async fn device_owner(&self, device_id: &str) -> ApiResult<Option<(String, String)>> {
        Ok(match device_id {
            DEV => Some((ACC.into(), "usr_1001".into())),
            DEV2 => Some((ACC.into(), "usr_1002".into())),
            DEV_OTHER => Some(("acc_01jf18ah3jeb5w6dfp27sgjsbz".into(), "usr_x".into())),
            _ => None,
        })
    }
    async fn user_by_extension(&self, account_id: &str, ext: &str) -> ApiResult<Option<User>> {
        Ok(self.users.iter().find(|u| u.account_id == account_id && u.extension == ext).cloned())
    }
    async fn calendar(&self, id: &str) -> ApiResult<Option<CalendarRecord>> {
        Ok(self.calendar.clone().filter(|c| c.id == id))
    }
    async fn account_trunks(&self, _: &str) -> ApiResult<Vec<Trunk>> {
        Ok(self.trunks.clone())
    }
    async fn wholesale_trunks(&self) -> ApiResult<Vec<Trunk>> {
        Ok(self.wholesale.clone())
    }
    async fn media_nodes(&self) -> ApiResult<Vec<MediaNode>> {
        Ok(self.nodes.clone())
    }
    async fn admit(&self, a: &Admit<'_>) -> ApiResult<Admission> {
        let mut l = self.leases.borrow_mut();
        if !a.take {
            return Ok(Admission { outcome: l.peek(a.call_id, a.limit), active: l.active(), limit: a.limit, taken: false });
        }
        let outcome = l.take(a.call_id, a.direction, a.from, a.to, a.limit, 0, 60_000);
        Ok(Admission { outcome, active: l.active(), limit: a.limit, taken: true })
    }
}

fn trunk(id: &str, name: &str, priority: i64, port: u16) -> Trunk {
    Trunk {
        id: id.into(),
        account_id: Some(ACC.into()),
        name: name.into(),
        priority,
        host: "127.0.0.1".into(),
        port,
        transport: "udp".into(),
        number_format: NumberFormat::E164,
        prefix: String::new(),
        caller_id_mode: "account".into(),
        caller_id_number: None,
        fr_timer_ms: 3000,
        fr_inv_timer_ms: 30000,
    }
}

fn store() -> Mem {
    Mem {
        account: Account {
            id: ACC.into(),
            name: "Acme".into(),
            status: "active".into(),
            time_zone: "America/New_York".into(),
            max_concurrent_calls: 2,
            dial_plan: DialPlan { country_code: "1".into(), premium_prefixes: vec![] },
            allow_international: false,
            allow_premium: false,
            caller_id_name: Some("Acme Corp".into()),
            caller_id_number: Some("+15551230100".into()),
            digest_algorithms: crate::model::default_algorithms(),
        },
        numbers: vec![PhoneNumber {
            id: "num_1".into(),
            e164: "+15551230100".into(),
            account_id: ACC.into(),
            target: Target::Flow(FLOW.into()),
            calendar_id: Some("cal_1".into()),
            after_hours: Some(Target::User("usr_1002".into())),
        }],
        users: vec![
            User { id: "usr_1001".into(), account_id: ACC.into(), extension: "1001".into(), name: "Alice".into(), caller_id_number: None },
            User { id: "usr_1002".into(), account_id: ACC.into(), extension: "1002".into(), name: "Bob".into(), caller_id_number: Some("+15551230102".into()) },
        ],
        // Deliberately out of priority order.
        trunks: vec![trunk("trk_b", "backup", 20, 5091), trunk("trk_a", "primary", 10, 5090)],
        wholesale: vec![trunk("trk_w", "wholesale", 100, 5092)],
        nodes: vec![
            MediaNode { id: "mn_1".into(), name: "fs-1".into(), sip_host: "127.0.0.1".into(), sip_port: 5070, transport: "udp".into(), status: "active".into() },
            MediaNode { id: "mn_2".into(), name: "fs-2".into(), sip_host: "127.0.0.1".into(), sip_port: 5071, transport: "udp".into(), status: "draining".into() },
        ],
        calendar: Some(CalendarRecord {
            id: "cal_1".into(),
            name: "office".into(),
            calendar: Calendar {
                time_zone: "America/New_York".into(),
                weekly: serde_json::json!({"mon":[["09:00","17:00"]],"tue":[["09:00","17:00"]],"wed":[["09:00","17:00"]],"thu":[["09:00","17:00"]],"fri":[["09:00","17:00"]]}),
                holidays: serde_json::json!([{"date":"2026-12-25","name":"Christmas Day"}]),
                overrides: serde_json::json!([]),
            },
        }),
        leases: RefCell::default(),
    }
}

fn from_device(call_id: &str, to: &str) -> RouteRequest {
    RouteRequest {
        call_id: call_id.into(),
        from: "sip:1001@acme.sip.io".into(),
        from_domain: "acme.sip.io".into(),
        to: format!("sip:{to}@acme.sip.io"),
        to_domain: "acme.sip.io".into(),
        ruri: format!("sip:{to}@acme.sip.io"),
        source_ip: "203.0.113.5".into(),
        source_port: Some(5060),
        account_id: ACC.into(),
        device_id: DEV.into(),
        carrier_id: String::new(),
    }
}

fn from_carrier(call_id: &str, to: &str) -> RouteRequest {
    RouteRequest { account_id: String::new(), device_id: String::new(), carrier_id: CAR.into(), from: "sip:+15559870000@carrier".into(), ..from_device(call_id, to) }
}

fn run(s: &Mem, req: &RouteRequest, now: u64) -> RouteOutcome {
    block_on(route(req, s, &RouteContext { now_ms: now, take_slot: true })).unwrap()
}

#[test]
fn extension_is_proxied_to_the_same_aor_auth_returns_without_a_slot() {
    let s = store();
    let out = run(&s, &from_device("c1", "1002"), WED_OPEN);
    assert_eq!(out.rtjson, serde_json::json!({"action":"proxy","aor":"sip:1002@acme.sip.io","account_id":ACC,"direction":"internal"}));
    assert_eq!(out.explain.direction, "internal");
    assert_eq!(s.leases.borrow().active(), 0);
}

#[test]
fn carrier_call_to_did_in_hours_goes_to_the_flow_on_an_active_media_node() {
    let s = store();
    let out = run(&s, &from_carrier("c1", "+15551230100"), WED_OPEN);
    let r = &out.rtjson;
    assert_eq!(r["action"], "flow");
    assert_eq!(r["account_id"], ACC);
    assert_eq!(r["flow_id"], FLOW);
    assert_eq!(r["routing"], "serial");
    let routes = r["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 1, "the draining node takes no new calls");
    assert_eq!(routes[0]["uri"], "sip:+15551230100@127.0.0.1:5070");
    assert_eq!(routes[0]["dst_uri"], "sip:127.0.0.1:5070");
    assert_eq!(routes[0]["headers"]["extra"], format!("X-Account-Id: {ACC}\r\nX-Flow-Id: {FLOW}\r\n"));
    assert_eq!(r["vars"]["calendar"], "open");
    assert_eq!(s.leases.borrow().active(), 1);
}

#[test]
fn carrier_numbers_without_plus_or_national_still_match() {
    for dialed in ["15551230100", "5551230100", "+1 (555) 123-0100"] {
        let s = store();
        assert_eq!(run(&s, &from_carrier("c1", dialed), WED_OPEN).rtjson["action"], "flow", "{dialed}");
    }
}

#[test]
fn after_hours_goes_to_the_after_hours_target() {
    let s = store();
    let out = run(&s, &from_carrier("c1", "+15551230100"), SUN);
    assert_eq!(out.rtjson, serde_json::json!({"action":"proxy","aor":"sip:1002@acme.sip.io","account_id":ACC,"direction":"inbound"}));
    assert_eq!(out.explain.calendar.as_ref().unwrap().state, CalendarState::Closed);
    assert_eq!(s.leases.borrow().active(), 1, "an inbound call to a user still takes a slot");
}

#[test]
fn unknown_number_is_404() {
    let s = store();
    let out = run(&s, &from_carrier("c1", "+15559999999"), WED_OPEN);
    assert_eq!(out.rtjson["action"], "reject");
    assert_eq!(out.rtjson["code"], 404);
}

#[test]
fn outbound_uses_account_trunks_by_priority_with_account_caller_id() {
    let s = store();
    let out = run(&s, &from_device("c1", "5557654321"), WED_OPEN);
    let r = &out.rtjson;
    assert_eq!(r["action"], "outbound");
    assert_eq!(r["account_id"], ACC);
    assert_eq!(r["direction"], "outbound");
    let routes = r["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["uri"], "sip:+15557654321@127.0.0.1:5090");
    assert_eq!(routes[1]["uri"], "sip:+15557654321@127.0.0.1:5091");
    assert_eq!(routes[0]["headers"]["from"]["uri"], "sip:+15551230100@acme.sip.io");
    assert_eq!(routes[0]["headers"]["from"]["display"], "Acme Corp");
    assert_eq!(routes[0]["fr_inv_timer"], 30000);
}

#[test]
fn user_caller_id_beats_the_account_default() {
    let s = store();
    let mut req = from_device("c1", "5557654321");
    req.device_id = DEV2.into();
    let out = run(&s, &req, WED_OPEN);
    assert_eq!(out.rtjson["routes"][0]["headers"]["from"]["uri"], "sip:+15551230102@acme.sip.io");
}

#[test]
fn caller_id_comes_from_the_device_not_the_from_header() {
    let s = store();
    let mut req = from_device("c1", "5557654321");
    req.from = "sip:1002@acme.sip.io".into(); // Alice's device claiming to be Bob
    let out = run(&s, &req, WED_OPEN);
    assert_eq!(out.rtjson["routes"][0]["headers"]["from"]["uri"], "sip:+15551230100@acme.sip.io");
}

#[test]
fn a_device_of_another_account_or_unknown_is_refused() {
    for dev in [DEV_OTHER, "dev_01jf18ah3jeb5w6dfp27sgjsbq"] {
        let s = store();
        let mut req = from_device("c1", "5557654321");
        req.device_id = dev.into();
        let out = run(&s, &req, WED_OPEN);
        assert_eq!(out.rtjson["code"], 403, "{dev}");
        assert_eq!(s.leases.borrow().active(), 0);
    }
}

#[test]
fn no_account_trunks_falls_back_to_wholesale() {
    let mut s = store();
    s.trunks.clear();
    let out = run(&s, &from_device("c1", "5557654321"), WED_OPEN);
    assert_eq!(out.rtjson["routes"][0]["uri"], "sip:+15557654321@127.0.0.1:5092");
    s.wholesale.clear();
    let out = run(&s, &from_device("c2", "5557654322"), WED_OPEN);
    assert_eq!(out.rtjson["code"], 503);
}

#[test]
fn international_and_premium_are_blocked_unless_allowed() {
    let mut s = store();
    for dialed in ["011442079460000", "+442079460000", "19005551234"] {
        let out = run(&s, &from_device("c1", dialed), WED_OPEN);
        assert_eq!(out.rtjson["code"], 403, "{dialed}");
    }
    assert_eq!(s.leases.borrow().active(), 0, "a policy refusal takes no slot");
    s.account.allow_international = true;
    s.account.allow_premium = true;
    assert_eq!(run(&s, &from_device("c2", "011442079460000"), WED_OPEN).rtjson["action"], "outbound");
    assert_eq!(run(&s, &from_device("c3", "19005551234"), WED_OPEN).rtjson["action"], "outbound");
}

#[test]
fn third_concurrent_call_is_486_and_a_retransmitted_route_takes_no_second_slot() {
    let s = store();
    assert_eq!(run(&s, &from_device("c1", "5557654321"), WED_OPEN).rtjson["action"], "outbound");
    assert_eq!(run(&s, &from_device("c1", "5557654321"), WED_OPEN).rtjson["action"], "outbound");
    assert_eq!(run(&s, &from_carrier("c2", "+15551230100"), WED_OPEN).rtjson["action"], "flow");
    let third = run(&s, &from_device("c3", "5557654321"), WED_OPEN);
    assert_eq!(third.rtjson["action"], "reject");
    assert_eq!(third.rtjson["code"], 486);
    assert_eq!(s.leases.borrow().active(), 2);
    // Emergency calls are never refused for capacity.
    assert_eq!(run(&s, &from_device("c4", "911"), WED_OPEN).rtjson["action"], "outbound");
}

#[test]
fn explain_does_not_take_a_slot() {
    let s = store();
    let out = block_on(route(&from_device("c1", "5557654321"), &s, &RouteContext { now_ms: WED_OPEN, take_slot: false })).unwrap();
    assert_eq!(out.rtjson["action"], "outbound");
    let cac = out.explain.cac.unwrap();
    assert!(!cac.taken);
    assert_eq!(s.leases.borrow().active(), 0);
    assert!(out.explain.rule.contains("primary"));
}

#[test]
fn on_net_number_dialed_by_a_device_is_routed_inbound() {
    let s = store();
    let out = run(&s, &from_device("c1", "15551230100"), WED_OPEN);
    assert_eq!(out.rtjson["action"], "flow");
    assert_eq!(out.explain.direction, "inbound");
}

#[test]
fn bad_requests_are_errors_not_routes() {
    let s = store();
    let mut r = from_device("", "1002");
    assert_eq!(block_on(route(&r, &s, &RouteContext { now_ms: 0, take_slot: true })).unwrap_err().status, 400);
    r = from_device("c1", "1002");
    r.account_id = "not-an-id".into();
    assert_eq!(block_on(route(&r, &s, &RouteContext { now_ms: 0, take_slot: true })).unwrap_err().status, 400);
    r = from_device("c1", "1002");
    r.carrier_id = CAR.into();
    assert_eq!(block_on(route(&r, &s, &RouteContext { now_ms: 0, take_slot: true })).unwrap_err().status, 400);
    let mut none = from_device("c1", "");
    none.ruri = String::new();
    none.to = String::new();
    assert_eq!(block_on(route(&none, &s, &RouteContext { now_ms: 0, take_slot: true })).unwrap_err().status, 400);
}

#[test]
fn suspended_account_cannot_call_or_be_called() {
    let mut s = store();
    s.account.status = "suspended".into();
    assert_eq!(run(&s, &from_device("c1", "5557654321"), WED_OPEN).rtjson["code"], 403);
    assert_eq!(run(&s, &from_carrier("c2", "+15551230100"), WED_OPEN).rtjson["code"], 403);
}

#[test]
fn media_node_choice_is_stable_per_call_and_spreads() {
    let nodes: Vec<MediaNode> = (0..4)
        .map(|i| MediaNode { id: format!("mn_{i}"), name: format!("fs-{i}"), sip_host: "127.0.0.1".into(), sip_port: 5070 + i, transport: "udp".into(), status: "active".into() })
        .collect();
    let a = media_route_order(nodes.clone(), "call-a");
    assert_eq!(a, media_route_order(nodes.clone(), "call-a"));
    assert_eq!(a.len(), 4);
    let firsts: std::collections::BTreeSet<String> = (0..64).map(|i| media_route_order(nodes.clone(), &format!("call-{i}"))[0].id.clone()).collect();
    assert!(firsts.len() >= 3, "{firsts:?}");
}

#[test]
fn a_suspended_account_can_still_reach_emergency_services() {
    let mut s = store();
    s.account.status = "suspended".into();
    let out = run(&s, &from_device("e1", "911"), WED_OPEN);
    assert_eq!(out.rtjson["action"], "outbound", "{:?}", out.explain);
    assert_eq!(out.rtjson["routes"][0]["uri"], "sip:911@127.0.0.1:5090");
    s.account.status = "disabled".into();
    assert_eq!(run(&s, &from_device("e2", "911"), WED_OPEN).rtjson["code"], 403, "a disabled account is closed");
}

#[test]
fn forwarding_obeys_the_dialing_policy() {
    let mut s = store();
    s.numbers[0].target = Target::External("+442079460000".into());
    s.numbers[0].calendar_id = None;
    let out = run(&s, &from_carrier("f1", "+15551230100"), WED_OPEN);
    assert_eq!(out.rtjson["code"], 403);
    assert!(out.explain.rule.contains("forward refused"), "{}", out.explain.rule);
    assert_eq!(s.leases.borrow().active(), 0);
    s.account.allow_international = true;
    let out = run(&s, &from_carrier("f2", "+15551230100"), WED_OPEN);
    assert_eq!(out.rtjson["action"], "outbound");
    assert!(out.rtjson["routes"][0]["headers"].get("from").is_none(), "forwarding passes the caller's number through");
}

#[test]
fn the_limit_refusal_explains_what_was_refused() {
    let mut s = store();
    s.account.max_concurrent_calls = 0;
    let out = run(&s, &from_device("l1", "5557654321"), WED_OPEN);
    assert_eq!(out.rtjson["code"], 486);
    assert!(out.explain.rule.starts_with("outbound +15557654321 (domestic); account"), "{}", out.explain.rule);
}

#[test]
fn the_lease_names_the_device_not_its_from_header() {
    let s = store();
    let mut req = from_device("c1", "5557654321");
    req.from = "sip:+15550009999@acme.sip.io".into();
    run(&s, &req, WED_OPEN);
    assert_eq!(s.leases.borrow().leases["c1"].from, "1001");
    // An on-net call hands the device's identity to the flow too.
    let out = run(&s, &RouteRequest { call_id: "c2".into(), ..from_device("c2", "15551230100") }, WED_OPEN);
    assert_eq!(out.rtjson["vars"]["caller"], "1001");
}
