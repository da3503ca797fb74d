//! `primer dashboard`: a local web UI that lists the runs under a directory, charts and
//! compares them live, and runs any primer job (pre-training, fine-tuning, compare, evaluation,
//! ...) through a queue that lets a set number run at once.

mod api;
mod control;
mod error;
mod jobs;
mod launch;
mod paths;
mod queue;
mod runs;
mod system;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;

use api::AppState;
use jobs::Catalogue;
use launch::Launcher;
use paths::Roots;
use queue::Queue;

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
    /// at start on every request. Requests must name the server by IP address or localhost.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// A further directory whose files jobs started from the page may read: corpora, tasks,
    /// checkpoints to import (repeatable).
    #[arg(long, value_name = "DIR")]
    allow: Vec<PathBuf>,
    /// Jobs that may run at once; the rest wait in the queue [default: the queue's setting,
    /// 1 for a new queue: two training jobs on one machine halve each other's speed].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
}

const INDEX_HTML: &str = include_str!("../web/index.html");

/// The page's files besides itself, each served at its path with its content type: the ES
/// modules of the page (`main.js` is the one it loads), and the vendored uPlot, a classic script
/// the modules find as `window.uPlot`, with its style sheet.
const WEB_FILES: [(&str, &str, &str); 11] = [
    ("/main.js", JAVASCRIPT, include_str!("../web/main.js")),
    ("/api.js", JAVASCRIPT, include_str!("../web/api.js")),
    ("/state.js", JAVASCRIPT, include_str!("../web/state.js")),
    ("/format.js", JAVASCRIPT, include_str!("../web/format.js")),
    ("/runs.js", JAVASCRIPT, include_str!("../web/runs.js")),
    ("/chart.js", JAVASCRIPT, include_str!("../web/chart.js")),
    ("/detail.js", JAVASCRIPT, include_str!("../web/detail.js")),
    ("/form.js", JAVASCRIPT, include_str!("../web/form.js")),
    ("/queue.js", JAVASCRIPT, include_str!("../web/queue.js")),
    ("/uPlot.js", JAVASCRIPT, include_str!("../web/vendor/uPlot.iife.min.js")),
    ("/uPlot.css", "text/css", include_str!("../web/vendor/uPlot.min.css")),
];
const JAVASCRIPT: &str = "text/javascript";

/// Runs `primer dashboard` until Ctrl-C; `cli` is the whole `primer` command line, whose
/// commands and options the page's forms offer.
pub fn run(args: DashboardArgs, cli: clap::Command) -> anyhow::Result<()> {
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
    let token = random_token();
    let exe = std::env::current_exe().context("cannot find the primer executable")?;
    let readable: Vec<PathBuf> = std::iter::once(&root).chain(&allowed).cloned().collect();
    let launcher = Launcher::new(exe, &readable)?;
    let queue = Queue::open(&root, launcher.clone(), args.jobs.map(usize::from))?;
    let state = AppState {
        roots: Roots { root, allowed },
        launcher,
        catalogue: Catalogue::new(cli),
        queue,
        sampler: Default::default(),
        token,
        token_for_reads: !args.host.is_loopback(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(state, SocketAddr::new(args.host, args.port)))
}

/// A new secret: 128 random bits in hex.
fn random_token() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).expect("hex digit"))
        .collect()
}

async fn serve(state: AppState, address: SocketAddr) -> anyhow::Result<()> {
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
    let (url, token_note) = if state.token_for_reads {
        (
            format!("http://{bound}/?token={}", state.token),
            " (listening beyond localhost: every request needs this token)",
        )
    } else {
        (format!("http://{bound}/"), "")
    };
    println!("dashboard of {} at {url}{token_note}", state.roots.root.display());
    let guard = Arc::new(Guard { bound });
    let index = INDEX_HTML.replace(
        r#"<meta name="primer-token" content="">"#,
        &format!(r#"<meta name="primer-token" content="{}">"#, state.token),
    );
    let state = Arc::new(state);
    tokio::spawn(run_queue(state.clone()));
    let web_files = WEB_FILES
        .into_iter()
        .fold(Router::new(), |router, (path, content_type, contents)| {
            router.route(
                path,
                get(move || async move { ([(header::CONTENT_TYPE, content_type)], contents) }),
            )
        });
    let app = web_files
        .route("/", get(|| async { axum::response::Html(index) }))
        .route("/report", get(api::report))
        .route("/api/runs", get(api::list))
        .route("/api/objectives", get(api::objectives))
        .route("/api/run", get(api::detail))
        .route("/api/diff", get(api::diff))
        .route("/api/metrics", get(api::metrics))
        .route("/api/events", get(api::events))
        .route("/api/commands", get(control::commands))
        .route("/api/jobs", post(control::submit))
        .route("/api/jobs/cancel", post(control::cancel))
        .route("/api/jobs/move", post(control::move_job))
        .route("/api/jobs/log", get(control::job_log))
        .route("/api/queue", get(control::queue))
        .route("/api/queue/limit", post(control::limit))
        .route("/api/stop", post(control::stop))
        .route("/api/resume", post(control::resume))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_token))
        .layer(axum::middleware::from_fn_with_state(guard, same_site_only))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the dashboard server stopped")
}

/// Starts queued jobs as slots free, every second, for as long as the dashboard serves.
async fn run_queue(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Err(e) = state.queue.advance() {
            eprintln!("the job queue: {e:#}");
        }
    }
}

/// What requests must name to be served: the address the dashboard listens on.
struct Guard {
    bound: SocketAddr,
}

impl Guard {
    /// Whether `authority` (a `Host` header, or an origin without its scheme) names this
    /// server: its port, and as host `localhost`, a loopback address or the address it is
    /// bound to (any IP address when bound to all). A DNS name an attacker controls
    /// (DNS rebinding) is none of these.
    fn names_this_server(&self, authority: &str) -> bool {
        let Ok(uri) = format!("http://{authority}/").parse::<axum::http::Uri>() else {
            return false;
        };
        let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
        if uri.port_u16().unwrap_or(80) != self.bound.port() {
            return false;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.bound.ip() || self.bound.ip().is_unspecified(),
            Err(_) => host.eq_ignore_ascii_case("localhost"),
        }
    }
}

/// Refuses what a page of another site can send: a `Host` that is not this server's (DNS
/// rebinding), an `Origin` of another site, and a state change that is not JSON (an HTML
/// form). The token check below then refuses a state change without the page's token.
async fn same_site_only(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match cross_site_refusal(&guard, &request) {
        Some(refusal) => (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({ "error": refusal })),
        )
            .into_response(),
        None => next.run(request).await,
    }
}

/// Why [`same_site_only`] refuses a request, if it does.
fn cross_site_refusal(guard: &Guard, request: &Request) -> Option<&'static str> {
    let header_of = |name| header_str(request, name);
    let host_ok = header_of(header::HOST).is_some_and(|host| guard.names_this_server(host));
    let origin_ok = header_of(header::ORIGIN).is_none_or(|origin| {
        origin
            .strip_prefix("http://")
            .is_some_and(|authority| guard.names_this_server(authority))
    });
    let json_ok = !changes_state(request)
        || header_of(header::CONTENT_TYPE).is_some_and(|t| t.trim().starts_with("application/json"));
    if !host_ok {
        Some("this dashboard answers only requests addressed to it by IP address or localhost")
    } else if !origin_ok {
        Some("requests from other sites are refused")
    } else if !json_ok {
        Some("changes are accepted as JSON only (Content-Type: application/json)")
    } else {
        None
    }
}

/// A header of a request as text, if it has it.
fn header_str(request: &Request, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether a request may change state (anything but GET and HEAD).
fn changes_state(request: &Request) -> bool {
    request.method() != Method::GET && request.method() != Method::HEAD
}

/// The header that carries the token on requests that change state.
pub const TOKEN_HEADER: &str = "x-primer-token";

/// Every request that changes state carries the token in the `X-Primer-Token` header, which a
/// page of another site can neither read (the token is only in this server's own page) nor
/// send (a custom header needs a CORS preflight this server never grants). Off localhost,
/// reads need it too (`?token=`, `Authorization: Bearer` or the header), but for the page's
/// own scripts and stylesheet.
async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if has_token(&state, &request) {
        return next.run(request).await;
    }
    let error = if changes_state(&request) {
        "missing or wrong X-Primer-Token header: changes are made from the dashboard's own page"
    } else {
        "missing or wrong token: use the URL the dashboard printed at start"
    };
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({ "error": error })),
    )
        .into_response()
}

/// Whether a request carries the token where [`require_token`] needs it.
fn has_token(state: &AppState, request: &Request) -> bool {
    let token = state.token.as_str();
    let from_header = header_str(request, TOKEN_HEADER) == Some(token);
    if changes_state(request) {
        return from_header;
    }
    // The page's scripts and stylesheet are code, the same for every dashboard: the page that
    // the token opened loads them by their plain paths.
    if WEB_FILES.iter().any(|(path, _, _)| *path == request.uri().path()) {
        return true;
    }
    let from_query = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|pair| pair.strip_prefix("token=") == Some(token));
    let from_bearer =
        header_str(request, header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer ")) == Some(token);
    !state.token_for_reads || from_header || from_query || from_bearer
}
