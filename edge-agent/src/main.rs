//! `edge-agent`: keeps the FreeSWITCH event socket open and serves the call-control
//! REST API. Configuration: environment (see `edge-agent/README.md`).

use edge_agent::client::{os_jitter, ClientConfig, EslClient};
use edge_agent::config::Config;
use edge_agent::esl::backoff::BackoffConfig;
use edge_agent::esl::{ConnConfig, EventFormat, Subscription};
use edge_agent::rest::{router, AppState};
use std::time::Duration;

/// Events the agent subscribes to on every (re)connection. HEARTBEAT keeps the
/// liveness check fed; BACKGROUND_JOB completes bgapi jobs; the channel events are
/// what the relay (issue 5 §4) will forward.
pub const EVENTS: &[&str] = &[
    "HEARTBEAT",
    "BACKGROUND_JOB",
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_HANGUP_COMPLETE",
];

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
    if cfg.callplane_url.is_none() {
        tracing::info!("CALLPLANE_URL not set: flow runner and relays are not configured (not built yet)");
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| format!("bind {}: {e}", cfg.listen))?;
    tracing::info!(listen = %cfg.listen, esl = %format!("{}:{}", cfg.esl_host, cfg.esl_port), auth = cfg.api_token.is_some(), "edge-agent started");
    let app = router(AppState::new(esl.clone(), cfg.api_token.clone()));
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.map_err(|e| e.to_string())?;
    tracing::info!("HTTP server drained; closing the event socket");
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
