//! `primer dashboard`: a local web UI that lists the runs under a directory, charts their
//! metrics live, and starts, stops and resumes pre-training runs.

mod api;
mod runs;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;

use api::AppState;

/// Arguments of `primer dashboard`.
#[derive(clap::Args, Debug)]
pub struct DashboardArgs {
    /// The directory of runs (searched recursively, so compare reports' runs appear); runs
    /// started from the page are created in it.
    #[arg(long, value_name = "DIR")]
    runs: PathBuf,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 6006)]
    port: u16,
    /// Address to listen on. Anything but a loopback address requires the access token printed
    /// at start on every request.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// A further directory whose files the start-run form may use as corpora (repeatable).
    #[arg(long, value_name = "DIR")]
    allow: Vec<PathBuf>,
}

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const UPLOT_JS: &str = include_str!("../../web/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../web/vendor/uPlot.min.css");

/// Runs `primer dashboard` until Ctrl-C.
pub fn run(args: DashboardArgs) -> anyhow::Result<()> {
    let root = args.runs.canonicalize().map_err(|e| {
        anyhow::anyhow!(
            "--runs {}: {e}: give an existing directory (create it with mkdir)",
            args.runs.display()
        )
    })?;
    if !root.is_dir() {
        bail!("--runs {} is not a directory", args.runs.display());
    }
    let allowed = args
        .allow
        .iter()
        .map(|dir| {
            dir.canonicalize()
                .map_err(|e| anyhow::anyhow!("--allow {}: {e}: give an existing directory", dir.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let token = (!args.host.is_loopback()).then(|| {
        let mut rng = rand::rng();
        (0..32)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).expect("hex digit"))
            .collect::<String>()
    });
    let state = Arc::new(AppState {
        root,
        allowed,
        exe: std::env::current_exe().context("cannot find the primer executable")?,
        token,
        children: Mutex::new(Vec::new()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(state, SocketAddr::new(args.host, args.port)))
}

async fn serve(state: Arc<AppState>, address: SocketAddr) -> anyhow::Result<()> {
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "port {} on {} is in use: pass --port {} (or --port 0 for any free port)",
            address.port(),
            address.ip(),
            address.port().wrapping_add(1)
        ),
        Err(e) => bail!("cannot listen on {address}: {e}"),
    };
    let bound = listener.local_addr()?;
    let url = match &state.token {
        Some(token) => format!("http://{bound}/?token={token}"),
        None => format!("http://{bound}/"),
    };
    let token_note = if state.token.is_some() {
        " (listening beyond localhost: every request needs this token)"
    } else {
        ""
    };
    println!("dashboard of {} at {url}{token_note}", state.root.display());
    let app = Router::new()
        .route("/", get(|| async { axum::response::Html(INDEX_HTML) }))
        .route(
            "/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], APP_JS) }),
        )
        .route(
            "/uPlot.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], UPLOT_JS) }),
        )
        .route(
            "/uPlot.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], UPLOT_CSS) }),
        )
        .route("/report", get(api::report))
        .route("/api/runs", get(api::list).post(api::start))
        .route("/api/run", get(api::detail))
        .route("/api/metrics", get(api::metrics))
        .route("/api/events", get(api::events))
        .route("/api/stop", post(api::stop))
        .route("/api/resume", post(api::resume))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the dashboard server stopped")
}

/// Off localhost, every request carries the token: `?token=` or `Authorization: Bearer`.
async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let from_query = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|pair| pair.strip_prefix("token=") == Some(token.as_str()));
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(token.as_str());
    if from_query || from_header {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                serde_json::json!({ "error": "missing or wrong token: use the URL the dashboard printed at start" }),
            ),
        )
            .into_response()
    }
}
