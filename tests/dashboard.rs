//! `primer dashboard` through the binary and HTTP: every endpoint with good and bad input,
//! a run started, followed, stopped and resumed from the API, and the token off localhost.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::*;

/// A dashboard process, killed when dropped.
struct Dashboard {
    child: Child,
    /// Kept open: a closed pipe would kill the dashboard when it next prints.
    _stdout: BufReader<std::process::ChildStdout>,
    url: String,
    /// The token printed off localhost, which reads need.
    token: Option<String>,
    /// The token the dashboard's own page carries, which every change needs.
    page_token: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dashboard {
    fn start(cache: &Path, runs: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["dashboard", "--runs", runs.to_str().unwrap(), "--port", "0"];
        args.extend(extra);
        let mut child = primer_command_args(cache, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        // "dashboard of DIR at http://HOST:PORT/[?token=T][ (note)]"
        let url = first
            .split(" at ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the dashboard prints its URL");
        let (base, token) = match url.split_once("?token=") {
            Some((base, token)) => (base, Some(token.to_string())),
            None => (url, None),
        };
        let port = base.rsplit(':').next().unwrap().trim_end_matches('/');
        let mut dashboard = Self {
            child,
            _stdout: stdout,
            url: format!("http://127.0.0.1:{port}"),
            token,
            page_token: String::new(),
        };
        let (status, page) = dashboard.get("/");
        assert_eq!(status, 200, "{page}");
        let (_, rest) = page
            .split_once(r#"<meta name="primer-token" content=""#)
            .expect("the page carries its token");
        dashboard.page_token = rest.split('"').next().unwrap().to_string();
        assert_eq!(dashboard.page_token.len(), 32);
        dashboard
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).build().into()
    }

    fn with_token(&self, path: &str) -> String {
        match &self.token {
            Some(token) => format!(
                "{}{path}{}token={token}",
                self.url,
                if path.contains('?') { "&" } else { "?" }
            ),
            None => format!("{}{path}", self.url),
        }
    }

    /// GET: status and body text.
    fn get(&self, path: &str) -> (u16, String) {
        let mut response = Self::agent().get(&self.with_token(path)).call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// POST a body: status and body as JSON.
    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let mut response = Self::agent()
            .post(&self.with_token(path))
            .header("Content-Type", "application/json")
            .header("X-Primer-Token", &self.page_token)
            .send(body)
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn run_info(&self, id: &str) -> Value {
        self.json("/api/runs")
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed"))
            .clone()
    }

    /// Waits until `done` holds for the run's row.
    fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let info = self.run_info(id);
            if done(&info) {
                return info;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{id}: waited for {what}: {info}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Plain HTTP/1.1 over a socket, as any client (or a browser on another site) may send it:
/// the status code of `METHOD path` with the given header lines (each ending in CRLF) and body.
fn raw_status(port: u16, method: &str, path: &str, headers: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        socket,
        "{method} {path} HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    socket.read_to_string(&mut reply).unwrap();
    reply.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn other_sites_rebinding_links_and_planted_pids_cannot_drive_the_dashboard() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let runs = tmp.path().join("runs");
    pretrain_tiny(cache, &runs.join("done"), "clm", 4);
    // A run whose status.json names an unrelated process as its trainer.
    let mut bystander = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let planted = runs.join("planted");
    std::fs::create_dir_all(&planted).unwrap();
    for file in ["config.json", "tokenizer.json", "metrics.jsonl"] {
        std::fs::copy(runs.join("done").join(file), planted.join(file)).unwrap();
    }
    let status = json!({"state": "running", "pid": bystander.id(), "updated_unix_s": 0});
    std::fs::write(planted.join("status.json"), status.to_string()).unwrap();
    // A run whose report.html links to a file outside the runs directory, and a folder that
    // links outside it.
    let linked = runs.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::copy(runs.join("done/config.json"), linked.join("config.json")).unwrap();
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, "not for the dashboard").unwrap();
    std::os::unix::fs::symlink(&secret, linked.join("report.html")).unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, runs.join("elsewhere")).unwrap();

    let dashboard = Dashboard::start(cache, &runs, &[]);
    let port = dashboard.port();
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    let token = format!("X-Primer-Token: {}\r\n", dashboard.page_token);
    let json_type = "Content-Type: application/json\r\n";
    let post = |path: &str, headers: &str| raw_status(port, "POST", path, headers, "{}");

    // A cross-site form post (no custom header possible), with or without the token.
    let form = "Content-Type: application/x-www-form-urlencoded\r\nOrigin: http://evil.example\r\n";
    assert_eq!(post("/api/stop?run=done", &format!("{host}{form}")), 403);
    assert_eq!(post("/api/resume?run=done", &format!("{host}{form}")), 403);
    assert_eq!(post("/api/stop?run=done", &format!("{host}{form}{token}")), 403);
    // JSON without the page's token, or from another origin.
    assert_eq!(post("/api/resume?run=done", &format!("{host}{json_type}")), 401);
    let evil_origin = "Origin: http://evil.example\r\n";
    assert_eq!(
        post(
            "/api/resume?run=done",
            &format!("{host}{json_type}{token}{evil_origin}")
        ),
        403
    );
    // DNS rebinding: the server's address under another name.
    let rebound = format!("Host: evil.example:{port}\r\n");
    assert_eq!(raw_status(port, "GET", "/api/runs", &rebound, ""), 403);
    assert_eq!(raw_status(port, "GET", "/", &rebound, ""), 403);
    let rebound_origin = format!("Origin: http://evil.example:{port}\r\n");
    assert_eq!(
        post("/api/jobs", &format!("{rebound}{rebound_origin}{json_type}{token}")),
        403
    );
    // The dashboard's own page may (same origin, its token).
    let own_origin = format!("Origin: http://127.0.0.1:{port}\r\n");
    assert_eq!(
        post("/api/resume?run=done", &format!("{host}{own_origin}{json_type}{token}")),
        409
    );
    assert_eq!(
        raw_status(port, "GET", "/api/runs", &format!("Host: localhost:{port}\r\n"), ""),
        200
    );

    // Links: never listed, served or written through.
    let ids: Vec<Value> = dashboard
        .json("/api/runs")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert!(
        ids.contains(&json!("done")) && !ids.contains(&json!("linked")),
        "{ids:?}"
    );
    let (status, body) = dashboard.get("/report?run=linked");
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("not for the dashboard"));
    let start = json!({"command": "pretrain", "options": {"out": "elsewhere/run", "objective": "clm", "corpus": "tinyshakespeare"}});
    let (status, value) = dashboard.post("/api/jobs", &start.to_string());
    assert_eq!(status, 403, "{value}");
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "a run was written outside"
    );

    // A stop signals only the process holding the run's lock: not the planted pid.
    let (status, value) = dashboard.post("/api/stop?run=planted", "{}");
    assert_eq!(status, 409, "{value}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the dashboard signalled an unrelated process"
    );
    assert_eq!(dashboard.run_info("planted")["status"], "interrupted");
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[test]
fn the_api_lists_follows_starts_stops_and_resumes_runs_and_refuses_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let runs = tmp.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    pretrain_tiny(cache, &runs.join("done"), "clm", 20);
    // A copy whose metrics end in a half-written line.
    let cut = runs.join("nested/cut");
    std::fs::create_dir_all(&cut).unwrap();
    for file in ["config.json", "tokenizer.json", "summary.json"] {
        std::fs::copy(runs.join("done").join(file), cut.join(file)).unwrap();
    }
    let metrics = std::fs::read_to_string(runs.join("done/metrics.jsonl")).unwrap();
    let complete = metrics.lines().count();
    std::fs::write(cut.join("metrics.jsonl"), format!("{metrics}{{\"step\": 99, \"spl")).unwrap();
    let corpus_dir = tmp.path().join("corpora");
    std::fs::create_dir_all(&corpus_dir).unwrap();
    std::fs::copy(shakespeare(), corpus_dir.join("shakespeare.txt")).unwrap();

    let dashboard = Dashboard::start(cache, &runs, &["--allow", corpus_dir.to_str().unwrap()]);
    assert!(dashboard.token.is_none(), "no token on localhost");
    let (status, page) = dashboard.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("primer dashboard") && page.contains("uPlot.js"));
    let (status, script) = dashboard.get("/uPlot.js");
    assert_eq!(status, 200);
    assert!(script.contains("uPlot"));

    // The runs list, recursive, with states read from the directories.
    let done = dashboard.run_info("done");
    assert_eq!(done["status"], "finished");
    assert_eq!(done["objective"], "clm");
    assert_eq!(done["step"], 20);
    let cut_info = dashboard.run_info("nested/cut");
    assert_eq!(cut_info["step"], 20, "the half-written line is ignored");
    let records = dashboard.json("/api/metrics?run=nested/cut");
    assert_eq!(records["records"].as_array().unwrap().len(), complete);
    let detail = dashboard.json("/api/run?run=done");
    assert_eq!(detail["status"]["state"], "finished");
    assert_eq!(detail["config"]["objective"]["name"], "clm");
    // The start form's objectives come from the registry, with their default settings.
    let objectives = dashboard.json("/api/objectives");
    let names: Vec<&str> = objectives
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mlm", "clm", "prefix", "electra", "gpt-bert"]);
    assert_eq!(objectives[0]["settings"]["mask_rate"], 0.15);

    // The job forms: every command that writes a run, a report or a result, with its options
    // as the CLI declares them.
    let commands = dashboard.json("/api/commands");
    let names: Vec<&str> = commands
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "pretrain",
            "finetune",
            "compare",
            "eval",
            "minimal-pairs",
            "prompt-classify",
            "multiple-choice",
            "score",
            "export",
            "import"
        ]
    );
    let finetune = &commands[1]["options"];
    let option = |key: &str| finetune.as_array().unwrap().iter().find(|o| o["key"] == key).cloned();
    assert_eq!(option("from").unwrap()["required"], true);
    assert_eq!(option("epochs").unwrap()["default_text"], "10");
    assert_eq!(option("pooling").unwrap()["choices"], json!(["first", "last", "mean"]));
    assert_eq!(option("freeze-encoder").unwrap()["kind"], "flag");
    assert!(option("no-tui").is_none(), "the dashboard sets --no-tui itself");

    // Bad input: 4xx with a message, never a crash.
    for (path, expected) in [
        ("/api/metrics?run=../../etc", 403),
        ("/api/metrics?run=/etc", 403),
        ("/api/metrics?run=nested/..%2F..%2F", 403),
        ("/api/metrics?run=missing", 404),
        ("/api/metrics?run=nested", 404),
        ("/api/metrics", 400),
        ("/api/run?run=../runs/done", 403),
        ("/api/events?run=../x", 403),
        ("/report?run=done", 404),
        ("/no/such/page", 404),
    ] {
        let (status, body) = dashboard.get(path);
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body.contains("error") || status == 400, "{path}: {body}");
    }
    let start = |options: Value| {
        dashboard.post(
            "/api/jobs",
            &json!({"command": "pretrain", "options": options}).to_string(),
        )
    };
    let good = json!({
        "out": "live", "objective": "clm", "corpus": corpus_dir.join("shakespeare.txt"),
        "tokenizer_kind": "char", "layers": 1, "d-model": 16, "heads": 2, "seq-len": 16,
        "batch-size": 4, "steps": 1_000_000, "eval-every": 25, "backend": "flex",
    });
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    for (body, expected, needle) in [
        (dashboard.post("/api/jobs", "not json"), 400, ""),
        (
            dashboard.post("/api/jobs", r#"{"command": "pretrain", "extra": 1}"#),
            400,
            "extra",
        ),
        (
            dashboard.post("/api/jobs", r#"{"command": "generate"}"#),
            400,
            "the dashboard runs pretrain, finetune, compare",
        ),
        (
            start(json!({"out": "x", "corpus": "tinyshakespeare"})),
            400,
            "objective",
        ),
        (start(with("unknown_option", json!(1))), 400, "unknown-option"),
        (start(with("layers", json!("two"))), 400, "--layers"),
        (start(with("layers", json!({"n": 2}))), 400, "layers"),
        (start(with("out", json!("../escape"))), 403, "without `..`"),
        (start(with("corpus", json!("/etc/passwd"))), 403, "allowed roots"),
        (start(with("corpus", json!("no-such-corpus"))), 400, "no-such-corpus"),
        (start(with("heads", json!(3))), 400, "heads"),
        (start(with("objective", json!("t5"))), 400, "t5"),
        (start(with("out", json!("done"))), 400, "already exists"),
    ] {
        let (status, value) = body;
        assert_eq!(status, expected, "{value}");
        assert!(
            value["error"].as_str().unwrap_or("").contains(needle),
            "{needle}: {value}"
        );
    }
    assert_eq!(
        dashboard.json("/api/queue")["jobs"],
        json!([]),
        "jobs the CLI refused at once are not kept"
    );
    assert!(!runs.join("escape").exists() && !tmp.path().join("escape").exists());
    assert_eq!(dashboard.post("/api/stop?run=done", "").0, 409);
    assert_eq!(dashboard.post("/api/resume?run=done", "").0, 409);
    assert_eq!(dashboard.post("/api/stop?run=../x", "").0, 403);

    // A run started from the API trains, its metrics grow, a stop checkpoints it, a resume
    // continues it.
    let (status, value) = start(good.clone());
    assert_eq!(status, 202, "{value}");
    assert_eq!(
        (value["id"].as_str(), value["state"].as_str()),
        (Some("live"), Some("running"))
    );
    let (status, value) = start(good.clone());
    assert_eq!(status, 409, "a second job writing the same run: {value}");
    let running = dashboard.wait_for("live", "a validation", |r| {
        r["status"] == "running" && r["valid"].is_object()
    });
    assert_eq!(running["total_steps"], 1_000_000);
    let first = dashboard.json("/api/metrics?run=live");
    let offset = first["offset"].as_u64().unwrap();
    assert!(offset > 0);
    std::thread::sleep(Duration::from_millis(500));
    let more = dashboard.json(&format!("/api/metrics?run=live&offset={offset}"));
    assert!(
        !more["records"].as_array().unwrap().is_empty(),
        "new points after offset {offset}"
    );
    assert!(more["offset"].as_u64().unwrap() > offset);

    // Server-sent events deliver the records too.
    let mut events = Dashboard::agent()
        .get(&dashboard.with_token("/api/events?run=live"))
        .call()
        .unwrap();
    let mut reader = BufReader::new(events.body_mut().as_reader());
    let mut seen = String::new();
    while !(seen.contains("event: metrics") && seen.contains("\"step\"")) {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "event stream ended: {seen}");
        seen.push_str(&line);
    }
    drop(reader);

    let (status, value) = dashboard.post("/api/stop?run=live", "");
    assert_eq!(status, 202, "{value}");
    let stopped = dashboard.wait_for("live", "the stop", |r| r["status"] == "interrupted");
    let stopped_at = stopped["step"].as_u64().unwrap();
    assert!(
        std::fs::read_dir(runs.join("live/checkpoints")).unwrap().count() > 0,
        "a stop writes a checkpoint"
    );
    let (status, value) = dashboard.post("/api/resume?run=live", "");
    assert_eq!(status, 202, "{value}");
    dashboard.wait_for("live", "progress after the resume", |r| {
        r["status"] == "running" && r["step"].as_u64().unwrap() > stopped_at
    });
    assert_eq!(dashboard.post("/api/resume?run=live", "").0, 409, "already running");
    // Each start and resume was a job of the queue, with its CPU and memory while it runs.
    let queue = dashboard.json("/api/queue");
    let jobs = queue["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{queue}");
    assert_eq!(
        (jobs[0]["state"].as_str(), jobs[1]["state"].as_str()),
        (Some("stopped"), Some("running")),
        "{queue}"
    );
    assert!(jobs[1]["load"]["rss_mib"].as_f64().unwrap() > 1.0, "{queue}");
    assert!(dashboard.run_info("live")["load"]["cpu_percent"].is_number());
    assert_eq!(dashboard.post("/api/stop?run=live", "").0, 202);
    dashboard.wait_for("live", "the second stop", |r| r["status"] == "interrupted");
    let detail = dashboard.json("/api/run?run=live");
    let log = detail["log"].as_array().unwrap();
    assert!(!log.is_empty(), "the dashboard keeps the run's log");
}

/// The queue's jobs by number: their state and place.
fn jobs_of(dashboard: &Dashboard) -> Vec<Value> {
    dashboard.json("/api/queue")["jobs"].as_array().unwrap().clone()
}

fn job(dashboard: &Dashboard, id: u64) -> Value {
    jobs_of(dashboard).into_iter().find(|job| job["id"] == id).unwrap()
}

#[test]
fn jobs_wait_their_turn_move_cancel_and_outlive_a_restart_of_the_dashboard() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let runs = tmp.path().join("runs");
    pretrain_tiny(cache, &runs.join("done"), "clm", 4);
    let corpus_dir = tmp.path().join("corpora");
    std::fs::create_dir_all(&corpus_dir).unwrap();
    let corpus = corpus_dir.join("shakespeare.txt");
    std::fs::copy(shakespeare(), &corpus).unwrap();
    // The eval below reads the data "done" was trained on, which jobs may read only when allowed.
    let trained_on = shared_data().join("tinyshakespeare");
    let allow = [
        "--allow",
        corpus_dir.to_str().unwrap(),
        "--allow",
        trained_on.to_str().unwrap(),
    ];
    let dashboard = Dashboard::start(cache, &runs, &[&allow[..], &["--jobs", "1"]].concat());
    let pretrain = |out: &str, steps: u64| {
        json!({"command": "pretrain", "options": {
            "out": out, "objective": "clm", "corpus": corpus, "tokenizer-kind": "char", "layers": 1,
            "d-model": 16, "heads": 2, "seq-len": 16, "batch-size": 4, "steps": steps, "eval-every": 500,
        }})
    };
    let submit = |body: Value| dashboard.post("/api/jobs", &body.to_string());
    // The first runs until it is stopped; the rest wait for it.
    let (status, first) = submit(pretrain("first", 1_000_000));
    assert_eq!((status, first["state"].as_str()), (202, Some("running")), "{first}");
    let (_, second) = submit(pretrain("second", 20));
    assert_eq!(
        (second["state"].as_str(), second["place"].as_u64()),
        (Some("queued"), Some(1))
    );
    let (_, eval) = submit(json!({"command": "eval", "options": {"run-dir": "done", "json": true}}));
    assert_eq!(eval["place"], 2, "{eval}");
    let (_, dropped) = submit(pretrain("dropped", 20));
    assert_eq!(dropped["place"], 3, "{dropped}");
    let id = |reply: &Value| reply["job"].as_u64().unwrap();
    let (first, second, eval, dropped) = (id(&first), id(&second), id(&eval), id(&dropped));
    assert_eq!(dashboard.post(&format!("/api/jobs/cancel?job={dropped}"), "").0, 202);
    assert_eq!(dashboard.post(&format!("/api/jobs/move?job={eval}&place=1"), "").0, 202);
    assert_eq!(
        (
            job(&dashboard, eval)["place"].as_u64(),
            job(&dashboard, second)["place"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(job(&dashboard, dropped)["state"], "cancelled");

    // Refusals: what is not there, not queued, or out of range.
    for (path, body, expected, needle) in [
        ("/api/jobs/cancel?job=999".to_string(), "", 409, "no job 999"),
        ("/api/jobs/cancel".into(), "", 400, "job"),
        (format!("/api/jobs/cancel?job={dropped}"), "", 409, "already ended"),
        ("/api/jobs/move?job=999&place=1".into(), "", 409, "not queued"),
        (format!("/api/jobs/move?job={first}&place=1"), "", 409, "not queued"),
        (format!("/api/jobs/move?job={eval}&place=0"), "", 400, "place"),
        (format!("/api/jobs/move?job={eval}"), "", 400, "place"),
        ("/api/queue/limit".into(), r#"{"limit": 0}"#, 400, "1 to 64"),
        ("/api/queue/limit".into(), r#"{"limit": 65}"#, 400, "1 to 64"),
        ("/api/queue/limit".into(), r#"{"limit": "two"}"#, 400, "limit"),
        ("/api/queue/limit".into(), r#"{}"#, 400, "limit"),
        ("/api/resume?run=done".into(), "", 409, "finished"),
    ] {
        let (status, value) = dashboard.post(&path, body);
        assert_eq!(status, expected, "{path}: {value}");
        assert!(
            value["error"].as_str().unwrap_or("").contains(needle),
            "{path}: {value}"
        );
    }
    assert_eq!(dashboard.get("/api/jobs/log?job=999").0, 404);
    assert_eq!(dashboard.get("/api/jobs/log?job=x").0, 400);
    let machine = &dashboard.json("/api/queue")["machine"];
    assert!(
        machine["cpus"].as_u64().unwrap() >= 1 && machine["load_average"].is_array(),
        "{machine}"
    );

    // A restart mid-queue: the running job runs on, the new dashboard watches it end and starts
    // the queued ones in their order, with the limit the queue file kept.
    drop(dashboard);
    let dashboard = Dashboard::start(cache, &runs, &allow);
    assert_eq!(dashboard.json("/api/queue")["limit"], 1);
    assert_eq!(
        job(&dashboard, first)["state"],
        "running",
        "the first job outlived the dashboard"
    );
    assert_eq!(dashboard.post("/api/stop?run=first", "").0, 202);
    let started = Instant::now();
    while jobs_of(&dashboard)
        .iter()
        .any(|job| job["state"] == "running" || job["state"] == "queued")
    {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{:?}",
            jobs_of(&dashboard)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (first, eval, second) = (job(&dashboard, first), job(&dashboard, eval), job(&dashboard, second));
    assert_eq!(
        first["state"], "stopped",
        "its run's status tells how it ended: {first}"
    );
    for job in [&eval, &second] {
        assert_eq!(job["state"], "done", "{job}");
    }
    let time = |job: &Value, key: &str| job[key].as_f64().unwrap();
    assert!(time(&first, "ended_at") <= time(&eval, "started_at"), "one at a time");
    assert!(
        time(&eval, "ended_at") <= time(&second, "started_at"),
        "in the order set"
    );
    assert!(!runs.join("dropped").exists(), "a cancelled job never starts");
    let log = dashboard.json(&format!("/api/jobs/log?job={}", eval["id"]));
    assert!(
        log["log"].to_string().contains("ppl"),
        "the eval's output is its log: {log}"
    );
}

#[test]
fn configs_of_selected_runs_are_compared_key_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    pretrain_tiny(tmp.path(), &runs.join("four"), "clm", 4);
    pretrain_tiny(tmp.path(), &runs.join("six"), "mlm", 6);
    let dashboard = Dashboard::start(tmp.path(), &runs, &[]);
    let (status, body) = dashboard.get("/api/diff?runs=four,six");
    assert_eq!(status, 200, "{body}");
    let diff: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(diff["runs"], json!(["four", "six"]));
    let keys: Vec<&str> = diff["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"train.steps") && keys.contains(&"objective.name"),
        "{keys:?}"
    );
    assert!(!keys.contains(&"model.d_model"), "equal keys are left out: {keys:?}");
    let steps = diff["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "train.steps")
        .unwrap();
    assert_eq!(steps["values"], json!([4, 6]));
    for (path, expected) in [
        ("/api/diff?runs=four", 400),
        ("/api/diff?runs=four,nope", 404),
        ("/api/diff?runs=four,../outside", 403),
        ("/api/diff", 400),
    ] {
        let (status, body) = dashboard.get(path);
        assert_eq!(status, expected, "{path}: {body}");
    }
}

#[test]
fn off_localhost_every_request_but_the_pages_code_needs_the_token_and_startup_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let dashboard = Dashboard::start(cache, tmp.path(), &["--host", "0.0.0.0"]);
    let token = dashboard.token.clone().expect("a token off localhost");
    assert_eq!(token.len(), 32);
    let port = dashboard.port();
    let status =
        |path: &str, headers: &str| raw_status(port, "GET", path, &format!("Host: localhost:{port}\r\n{headers}"), "");
    assert_eq!(status("/api/runs", ""), 401);
    assert_eq!(status("/", ""), 401);
    assert_eq!(status("/api/runs?token=wrong", ""), 401);
    assert_eq!(status(&format!("/api/runs?token={token}"), ""), 200);
    assert_eq!(status("/api/runs", &format!("Authorization: Bearer {token}\r\n")), 200);
    assert_eq!(status("/api/runs", "Authorization: Bearer wrong\r\n"), 401);
    // The page opened with the token loads its scripts and stylesheet by their plain paths.
    for code in ["/main.js", "/runs.js", "/uPlot.js", "/uPlot.css"] {
        assert_eq!(status(code, ""), 200, "{code}");
    }

    // A port in use, and a runs directory that does not exist.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    assert_error(
        cache,
        &format!("dashboard --runs {} --port {port}", tmp.path().display()),
        &[&format!("port {port}"), "in use", "--port"],
    );
    assert_error(
        cache,
        &format!("dashboard --runs {}", tmp.path().join("nope").display()),
        &["--runs", "nope"],
    );
}

/// The dashboard in a real headless Chromium (Debian's `chromium`, driven by `playwright-core`
/// from `dashboard/web`, both installed by `scripts/setup-browser`): `dashboard/web/tests/browser.mjs`
/// starts and restarts the dashboard itself, runs, queues, cancels and compares jobs from the
/// page, works the runs table and checks the layout. Its screenshots are kept under
/// `target/tmp/browser-screenshots/`.
#[test]
fn in_a_browser_jobs_are_queued_watched_stopped_compared_and_tabulated() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboard/web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/setup-browser"
    );
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let runs = tmp.path().join("runs");
    // A finished run long enough to show a curve beside the live one, with a few samples.
    primer_ok(
        cache,
        &format!(
            "pretrain --objective clm --corpus {} --out {} --no-tui --tokenizer-kind char --layers 1 \
             --d-model 16 --heads 2 --seq-len 16 --batch-size 4 --steps 400 --lr 3e-3 --eval-every 100 \
             --eval-batches 2",
            shakespeare(),
            runs.join("done").display()
        ),
    );
    // A fine-tune with a long name, of a task given as a long file path, for the layout checks.
    let tasks = tmp.path().join("tasks-kept-in-a-folder-with-a-rather-long-name");
    std::fs::create_dir_all(&tasks).unwrap();
    let (train, valid) = write_task(&tasks);
    let task = tasks.join("a-task-file-with-a-long-name.tsv");
    std::fs::rename(&train, &task).unwrap();
    primer_ok(
        cache,
        &format!(
            "finetune --from {} --task {} --valid-file {valid} --text-column sentence --epochs 1 --no-tui --out {}",
            runs.join("done").display(),
            task.display(),
            runs.join("a-fine-tune-of-the-finished-run-with-a-long-name").display()
        ),
    );
    // The same task with a `text` column, as compare and the page's fine-tune read it.
    let text_task = tasks.join("text-task.tsv");
    std::fs::write(
        &text_task,
        std::fs::read_to_string(&task).unwrap().replacen("sentence", "text", 1),
    )
    .unwrap();
    let corpus_dir = tmp.path().join("corpora");
    std::fs::create_dir_all(&corpus_dir).unwrap();
    let corpus = corpus_dir.join("shakespeare.txt");
    std::fs::copy(shakespeare(), &corpus).unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let output = std::process::Command::new("node")
        .arg(web.join("tests/browser.mjs"))
        .args([
            env!("CARGO_BIN_EXE_primer").as_ref(),
            runs.as_os_str(),
            corpus.as_os_str(),
        ])
        .args([text_task.as_os_str(), shots.as_os_str()])
        .args(["--jobs", "1", "--allow"])
        .arg(&corpus_dir)
        .arg("--allow")
        .arg(&tasks)
        .env("PRIMER_DATA", shared_data())
        .env("PRIMER_CACHE", cache)
        .env_remove("PRIMER_BACKEND")
        .output()
        .expect("node runs (install Node.js)");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "browser test failed:\n{printed}");
    assert!(printed.contains("browser test passed"), "{printed}");
    for shot in [
        "1-training",
        "2-stopped",
        "3-overlay",
        "4-detail",
        "5-queue",
        "6-restarted",
        "7-compare",
        "8-table",
        "9-layout-1500",
        "9-layout-1024",
    ] {
        let png = std::fs::read(shots.join(format!("{shot}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{shot}.png is a PNG");
    }
    // Nothing left running: the page stopped its runs.
    for run in ["live", "q-long"] {
        let status: Value =
            serde_json::from_str(&std::fs::read_to_string(runs.join(run).join("status.json")).unwrap()).unwrap();
        assert_eq!(status["state"], "interrupted", "{run}");
    }
}

/// A tiny character-level pre-training job of `steps` steps on `corpus`, writing `out`.
fn tiny_job(out: &str, corpus: &Path, steps: u64) -> Value {
    json!({"command": "pretrain", "options": {
        "out": out, "objective": "clm", "corpus": corpus, "tokenizer-kind": "char", "layers": 1,
        "d-model": 16, "heads": 2, "seq-len": 16, "batch-size": 4, "steps": steps, "eval-every": 500,
    }})
}

/// The status and error of a refused request.
fn refusal((status, value): (u16, Value)) -> (u16, String) {
    (status, value["error"].as_str().unwrap_or_default().to_string())
}

/// A JSON Lines file of two minimal pairs.
fn write_pairs(path: &Path) {
    let pair = |good: &str, bad: &str| json!({"sentence_good": good, "sentence_bad": bad}).to_string();
    let pairs = [pair("the king is here", "the king are here"), pair("we were", "we was")];
    std::fs::write(path, pairs.join("\n") + "\n").unwrap();
}

#[test]
fn jobs_write_only_new_paths_never_a_runs_files_the_queue_or_the_runs_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let runs = tmp.path().join("runs");
    pretrain_tiny(cache, &runs.join("done"), "clm", 4);
    let pairs = runs.join("pairs.jsonl");
    write_pairs(&pairs);
    std::os::unix::fs::symlink(&runs, runs.join("alias")).unwrap();
    let corpus = runs.join("corpus.txt");
    std::fs::copy(shakespeare(), &corpus).unwrap();
    let config = std::fs::read(runs.join("done/config.json")).unwrap();
    let dashboard = Dashboard::start(cache, &runs, &["--jobs", "1"]);
    let submit = |body: Value| refusal(dashboard.post("/api/jobs", &body.to_string()));
    let scored =
        |out: &str| json!({"command": "minimal-pairs", "options": {"run": "done", "pairs": pairs, "out": out}});

    for (body, needle) in [
        (scored("done/config.json"), "already exists"),
        (scored(".dashboard/queue.json"), ".dashboard"),
        (scored("alias/.dashboard/new.json"), ".dashboard"),
        (
            json!({"command": "pretrain", "options": {"out": ".dashboard", "overwrite": true, "objective": "clm", "corpus": corpus}}),
            ".dashboard",
        ),
        (
            json!({"command": "pretrain", "options": {"out": "alias", "overwrite": true, "objective": "clm", "corpus": corpus}}),
            "runs directory itself",
        ),
        (
            json!({"command": "pretrain", "options": {"out": "done/model.bpk", "objective": "clm", "corpus": corpus}}),
            "already exists",
        ),
        (
            json!({"command": "export", "options": {"run": "done", "out": "done"}}),
            "already exists",
        ),
    ] {
        let (status, error) = submit(body.clone());
        assert_eq!(status, 403, "{body}: {error}");
        assert!(error.contains("--out") && error.contains(needle), "{body}: {error}");
    }
    assert_eq!(std::fs::read(runs.join("done/config.json")).unwrap(), config);
    assert!(runs.join(".dashboard/queue.json").is_file());
    assert_eq!(dashboard.json("/api/queue")["jobs"], json!([]), "no job was queued");

    // A new path is written; one that came to exist while its job waited is refused when the
    // job starts, and left as it is.
    let (status, error) = submit(scored("scores.json"));
    assert_eq!(status, 202, "{error}");
    let (status, blocker) = dashboard.post("/api/jobs", &tiny_job("blocker", &corpus, 1_000_000).to_string());
    assert_eq!(status, 202, "{blocker}");
    let (status, late) = dashboard.post("/api/jobs", &scored("late.json").to_string());
    assert_eq!((status, late["state"].as_str()), (202, Some("queued")), "{late}");
    std::fs::write(runs.join("late.json"), "keep").unwrap();
    assert_eq!(
        dashboard
            .post(&format!("/api/jobs/cancel?job={}", blocker["job"]), "")
            .0,
        202
    );
    let started = Instant::now();
    let late = loop {
        let late = job(&dashboard, late["job"].as_u64().unwrap());
        if late["ended_at"].is_number() {
            break late;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{late}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(late["state"], "failed", "{late}");
    assert!(late["error"].as_str().unwrap().contains("already exists"), "{late}");
    assert_eq!(std::fs::read_to_string(runs.join("late.json")).unwrap(), "keep");
    assert_eq!(read_json(&runs.join("scores.json"))["pairs"], 2);
}

#[test]
fn files_named_in_configs_task_tables_and_stored_runs_are_confined_like_options() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let runs = tmp.path().join("runs");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "the secret words of the outside\n\n".repeat(1000)).unwrap();
    // A run halted halfway, whose stored options name its corpus outside the runs directory.
    primer_ok(
        cache,
        &format!(
            "pretrain --objective clm --corpus {} --out {} --no-tui --tokenizer-kind char --layers 1 \
             --d-model 16 --heads 2 --seq-len 16 --batch-size 4 --steps 20 --eval-every 10 --halt-after 2 \
             --checkpoint-every 2",
            secret.display(),
            runs.join("halted").display()
        ),
    );
    std::fs::copy(runs.join("halted/tokenizer.json"), outside.join("tokenizer.json")).unwrap();
    let (_, valid) = write_task(&outside);
    let corpus = runs.join("corpus.txt");
    std::fs::copy(shakespeare(), &corpus).unwrap();
    let toml = |name: &str, text: String| {
        std::fs::write(runs.join(name), text).unwrap();
        name.to_string()
    };
    let corpus_toml = toml(
        "corpus.toml",
        format!("corpus = [{:?}]\n", secret.display().to_string()),
    );
    let tokenizer_toml = toml(
        "tokenizer.toml",
        format!(
            "corpus = [{:?}]\ntokenizer = {:?}\n",
            corpus.display().to_string(),
            outside.join("tokenizer.json").display().to_string()
        ),
    );
    let task_toml = toml(
        "tasks.toml",
        format!("[[task]]\ntask = {:?}\nname = \"leak\"\n", valid.as_str()),
    );
    let dashboard = Dashboard::start(cache, &runs, &[]);
    let submit = |body: Value| refusal(dashboard.post("/api/jobs", &body.to_string()));
    let tiny = |out: &str, config: &str| {
        json!({"command": "pretrain", "options": {"out": out, "config": config, "objective": "clm",
            "tokenizer-kind": "char", "layers": 1, "d-model": 16, "heads": 2, "seq-len": 16, "steps": 4}})
    };
    for (body, needle) in [
        (tiny("from-corpus", &corpus_toml), "corpus"),
        (tiny("from-tokenizer", &tokenizer_toml), "tokenizer"),
        (
            json!({"command": "compare", "options": {"out": "compared", "config": task_toml, "corpus": corpus,
                "objectives": "clm", "seeds": 1, "steps": 4, "minimal-pairs": "none"}}),
            "--task",
        ),
    ] {
        let (status, error) = submit(body.clone());
        assert_eq!(status, 400, "{body}: {error}");
        assert!(
            error.contains(needle) && error.contains("allowed roots"),
            "{body}: {error}"
        );
    }
    let (status, value) = dashboard.post("/api/resume?run=halted", "");
    let error = value["error"].as_str().unwrap_or_default();
    assert_eq!(status, 400, "{value}");
    assert!(
        error.contains("secret.txt") && error.contains("allowed roots"),
        "{error}"
    );
    for made in ["from-corpus", "from-tokenizer", "compared"] {
        assert!(!runs.join(made).exists(), "{made} was created");
    }
    assert_eq!(dashboard.json("/api/queue")["jobs"], json!([]), "no job was queued");
    assert_eq!(dashboard.run_info("halted")["status"], "interrupted");

    // The one check is the CLI's: any command given the allowed roots refuses the same files.
    let output = primer_command(
        cache,
        &format!(
            "pretrain --config {} --objective clm --tokenizer-kind char --out {}",
            runs.join(&corpus_toml).display(),
            runs.join("direct").display()
        ),
    )
    .env("PRIMER_ALLOWED_ROOTS", &runs)
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("allowed roots"), "{}", stderr(&output));
    assert!(!runs.join("direct").exists());
}

/// When process `pid` started, ticks after boot (`/proc/PID/stat` field 22).
fn start_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    fields[19].parse().unwrap()
}

/// `sleep 60` holding an exclusive `flock` on `file`, as any program may.
fn lock_holder(file: &Path) -> Child {
    std::process::Command::new("flock")
        .arg(file)
        .args(["sleep", "60"])
        .spawn()
        .unwrap()
}

/// Waits until some process holds the lock on `file`.
fn wait_until_locked(file: &Path) {
    let started = Instant::now();
    while std::fs::File::open(file).unwrap().try_lock().is_ok() {
        assert!(started.elapsed() < Duration::from_secs(10), "nobody locked {file:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn only_the_dashboards_own_jobs_and_primer_processes_holding_a_runs_lock_are_signalled() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let runs = tmp.path().join("runs");
    pretrain_tiny(cache, &runs.join("done"), "clm", 4);
    // Jobs planted in the queue file as running, with the pid (and start time) of unrelated
    // processes, and a guessed secret.
    let bystanders: Vec<Child> = (0..2)
        .map(|_| std::process::Command::new("sleep").arg("60").spawn().unwrap())
        .collect();
    let planted = |id: u64, bystander: &Child, token: Option<&str>| {
        json!({"id": id, "command": "pretrain", "args": [], "run": null, "state": "running",
            "pid": bystander.id(), "start_ticks": start_ticks(bystander.id()), "submitted_at": 0.0,
            "started_at": 0.0, "ended_at": null, "exit_code": null, "error": null, "token": token})
    };
    std::fs::create_dir_all(runs.join(".dashboard")).unwrap();
    let queue = json!({"limit": 1, "next_id": 3, "jobs": [
        planted(1, &bystanders[0], None),
        planted(2, &bystanders[1], Some("00000000000000000000000000000000")),
    ]});
    std::fs::write(runs.join(".dashboard/queue.json"), queue.to_string()).unwrap();
    // Runs whose lock is held by a program that is not primer: through a hard link to its own
    // file, and on the run's own lock file.
    let mut holders = Vec::new();
    for (name, linked) in [("linked", true), ("held", false)] {
        let run = runs.join(name);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::copy(runs.join("done/config.json"), run.join("config.json")).unwrap();
        let file = if linked {
            tmp.path().join("held-elsewhere")
        } else {
            run.join(".lock")
        };
        std::fs::write(&file, "").unwrap();
        if linked {
            std::fs::hard_link(&file, run.join(".lock")).unwrap();
        }
        holders.push(lock_holder(&file));
        wait_until_locked(&file);
    }

    let dashboard = Dashboard::start(cache, &runs, &[]);
    let untouched = |processes: Vec<Child>, what: &str| {
        std::thread::sleep(Duration::from_millis(300));
        for mut process in processes {
            assert!(process.try_wait().unwrap().is_none(), "the dashboard signalled {what}");
            process.kill().unwrap();
            process.wait().unwrap();
        }
    };
    for id in [1, 2] {
        let (status, value) = dashboard.post(&format!("/api/jobs/cancel?job={id}"), "");
        assert!(status == 202 || status == 409, "{value}");
    }
    untouched(bystanders, "the pid of a planted job");
    for job in jobs_of(&dashboard) {
        assert_ne!(job["state"], "running", "a planted pid is no running job: {job}");
    }
    for run in ["linked", "held"] {
        let (status, value) = dashboard.post(&format!("/api/stop?run={run}"), "");
        assert_eq!(status, 409, "{run}: {value}");
    }
    untouched(holders, "a lock holder that is not primer");
}

#[test]
fn a_queued_jobs_options_and_inputs_are_checked_when_it_is_submitted() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let runs = tmp.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let corpus = runs.join("corpus.txt");
    std::fs::copy(shakespeare(), &corpus).unwrap();
    let dashboard = Dashboard::start(&cache, &runs, &["--jobs", "1"]);
    let submit = |body: Value| dashboard.post("/api/jobs", &body.to_string());
    let (status, running) = submit(tiny_job("running", &corpus, 1_000_000));
    assert_eq!((status, running["state"].as_str()), (202, Some("running")), "{running}");
    let with = |key: &str, value: Value| {
        let mut body = tiny_job("queued", &corpus, 20);
        body["options"][key] = value;
        if key == "vocab-size" {
            body["options"]["tokenizer-kind"] = json!("bpe");
        }
        body
    };
    for (body, needle) in [
        (with("heads", json!(3)), "--heads"),
        (with("lr", json!(0)), "lr"),
        (with("vocab-size", json!(5)), "--vocab-size"),
        (with("tokenizer", json!("corpus.txt")), "tokenizer"),
    ] {
        let (status, error) = refusal(submit(body.clone()));
        assert_eq!(status, 400, "{body}: {error}");
        assert!(error.contains(needle), "{needle}: {error}");
    }
    let (status, queued) = submit(with("steps", json!(20)));
    assert_eq!((status, queued["state"].as_str()), (202, Some("queued")), "{queued}");
    assert_eq!(jobs_of(&dashboard).len(), 2, "refused jobs are not queued");
    for job in [&queued, &running] {
        assert_eq!(
            dashboard.post(&format!("/api/jobs/cancel?job={}", job["job"]), "").0,
            202
        );
    }

    // The check writes nothing and does no slow work: no run, no prepared data.
    let fresh = tmp.path().join("fresh-cache");
    let output = primer_command(
        &fresh,
        &format!(
            "pretrain --objective clm --corpus {} --tokenizer-kind char --out {} --no-tui",
            corpus.display(),
            runs.join("checked").display()
        ),
    )
    .env("PRIMER_CHECK_ONLY", "1")
    .output()
    .unwrap();
    assert_ok(&output);
    assert!(!runs.join("checked").exists() && !fresh.exists());
}
