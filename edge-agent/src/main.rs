//! `edge-agent`: keeps the FreeSWITCH event socket open, serves the call-control
//! REST API and relays channel events, live calls and bans to callplane.
//! Configuration: environment (see `edge-agent/README.md`).

use edge_agent::client::{os_jitter, ClientConfig, EslClient};
use edge_agent::config::Config;
use edge_agent::esl::backoff::BackoffConfig;
use edge_agent::esl::{ConnConfig, EventFormat, Subscription};
use edge_agent::flow::{self, esl_map::{DialConfig, MediaConfig}, runner::RunnerConfig, FlowConfig};
use edge_agent::http::Endpoint;
use edge_agent::relay::{self, RelayConfig, EVENTS};
use edge_agent::rest::{router, AppState};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edge-agent: configuration error: {e}");
            std::process::exit(2);
        }
    };
    let builder = tracing_subscriber::fmt().with_target(false);
    if cfg.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(run(cfg)) {
        tracing::error!(error = %e, "edge-agent stopped");
        std::process::exit(1);
    }
}

async fn run(cfg: Config) -> Result<(), String> {
    let sub = Subscription::new(EventFormat::Json, EVENTS).map_err(|e| e.to_string())?;
    let esl = EslClient::start(
        ClientConfig {
            host: cfg.esl_host.clone(),
            port: cfg.esl_port,
            conn: ConnConfig::new(&cfg.esl_password, Some(sub)),
            connect_timeout: Duration::from_secs(5),
            backoff: BackoffConfig::default(),
        },
        os_jitter(),
    );
    let relay = match (&cfg.callplane_url, &cfg.callplane_token, &cfg.node_name) {
        (Some(url), Some(token), Some(node)) => {
            let mut ep = Endpoint::parse(url)?;
            ep.virtual_host = cfg.callplane_host.clone();
            let mut rc = RelayConfig::new(ep, token, node);
            rc.reconcile_every = (cfg.reconcile_secs > 0).then(|| Duration::from_secs(cfg.reconcile_secs));
            rc.reconcile_grace_secs = cfg.reconcile_grace_secs;
            rc.ban_file = cfg.ban_file.clone();
            rc.ban_every = Duration::from_secs(cfg.ban_report_secs);
            rc.queue_capacity = cfg.relay_queue;
            Some(relay::start(rc, esl.clone(), os_jitter))
        }
        _ => {
            tracing::info!("CALLPLANE_URL not set: relays are off (REST API only)");
            None
        }
    };
    // The flow runner: FreeSWITCH's outbound socket → callplane's /flow.
    if let (Some(port), Some(url), Some(token)) = (cfg.flow_port, &cfg.callplane_url, &cfg.callplane_token) {
        let mut ep = Endpoint::parse(url)?;
        ep.virtual_host = cfg.callplane_host.clone();
        let mut runner = RunnerConfig::default();
        runner.media = MediaConfig { tts_engine: cfg.flow_tts_engine.clone(), tts_voice: cfg.flow_tts_voice.clone() };
        runner.dial = DialConfig { sip_profile: cfg.flow_sip_profile.clone(), sip_edge: cfg.flow_sip_edge.clone() };
        runner.record_dir = cfg.flow_record_dir.clone();
        runner.conference_profile = cfg.flow_conference_profile.clone();
        let fc = FlowConfig { endpoint: ep, token: token.clone(), media_cache: cfg.flow_media_cache.clone(), runner, http_timeout: Duration::from_secs(10) };
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| format!("bind the flow socket 127.0.0.1:{port}: {e}"))?;
        tracing::info!(port, media_cache = %cfg.flow_media_cache.display(), record_dir = %cfg.flow_record_dir, "flow runner listening for FreeSWITCH's outbound socket");
        tokio::spawn(flow::serve(l, Arc::new(fc)));
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| format!("bind {}: {e}", cfg.listen))?;
    tracing::info!(listen = %cfg.listen, esl = %format!("{}:{}", cfg.esl_host, cfg.esl_port), auth = cfg.api_token.is_some(), relay = relay.is_some(), "edge-agent started");
    let mut state = AppState::new(esl.clone(), cfg.api_token.clone());
    if let Some(r) = relay.clone() {
        state.relay_stats = Some(Arc::new(move || serde_json::to_value(r.stats()).unwrap_or_default()));
    }
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await.map_err(|e| e.to_string())?;
    if let Some(r) = &relay {
        tracing::info!("HTTP server drained; flushing the relay queue");
        r.shutdown(Duration::from_secs(3)).await;
    }
    tracing::info!("closing the event socket");
    esl.shutdown(Duration::from_secs(2)).await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
