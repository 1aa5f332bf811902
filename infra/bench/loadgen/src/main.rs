//! Confab's load generator (issue 20): N streaming chat turns through the
//! gateway, all at once or at a fixed arrival rate, in one of the three
//! forms a client streams a turn in, timed per turn from a compiled client
//! on one thread, so that the figures are the stack's and not the client's.
//!
//!   confab-loadgen --gateway http://127.0.0.1:9050 --n 1000 \
//!       [--form sse|openai|ws] [--rate 0] [--words 50]
//!   confab-loadgen --gateway … --concurrency 200 --duration 20 [--form …]
//!
//! The second form is the saturation run: that many clients, each starting
//! its next turn as soon as its last one is done, for that many seconds
//! (as `wrk` would); turns/s is the turns done over the run. Each turn
//! there begins with creating its conversation (`sse`, `ws`), counted in
//! the services' CPU but not in the turn's times.
//!
//! Forms: `sse` posts `/api/v1/conversations/{id}/messages/stream` (native
//! events, one new conversation per turn); `openai` posts
//! `/api/v1/chat/completions` with `stream: true` (model `math`); `ws` opens
//! `/ws/chat?conversation_id=…` and sends `user_prompt`. The message is
//! `--words` words that match no rule of the builtin model's fixtures, so
//! the model echoes it word by word.
//!
//! Per turn: time to first event (from just before the request is sent),
//! time to done, events received, and the error if any (not 200, no
//! `done`/`[DONE]`/final frame, an `error` event). For `sse` and `ws` every
//! conversation is read back: exactly the user's message and the echoed
//! reply, both `complete`. The client's own CPU time is printed beside the
//! figures.
//!
//! With `--pids gateway=PID,chat-service=PID,…` it also prints each
//! service's CPU time over the burst (from `/proc/<pid>/stat`) per turn and
//! per token (a word: the builtin model streams one per chunk), its idle
//! RSS and its peak during the burst (read every 50 ms), and (peak − idle)
//! / N: what an open turn costs in memory when all N are open at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// Words of no fixture rule: the builtin model echoes the message.
const WORDS: [&str; 26] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];

#[derive(Clone, Copy, PartialEq)]
enum Form {
    Sse,
    OpenAi,
    Ws,
}

struct Args {
    gateway: String,
    n: usize,
    form: Form,
    /// Turns started per second; 0: all at once.
    rate: f64,
    words: usize,
    /// Clients running turns back to back (the saturation run); 0: the
    /// `n` turns at once or at `rate`.
    concurrency: usize,
    /// Seconds the saturation run lasts.
    duration: f64,
    /// The services measured: name and process id.
    services: Vec<(String, u32)>,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        gateway: "http://127.0.0.1:9050".into(),
        n: 100,
        form: Form::Sse,
        rate: 0.0,
        words: 50,
        concurrency: 0,
        duration: 20.0,
        services: Vec::new(),
    };
    let mut given = std::env::args().skip(1);
    while let Some(name) = given.next() {
        let value = given.next().ok_or(format!("{name} needs a value"))?;
        let number = |what: &str| value.parse::<f64>().map_err(|_| format!("{what}: {value}"));
        match name.as_str() {
            "--gateway" => args.gateway = value.trim_end_matches('/').to_owned(),
            "--n" => args.n = number("--n")? as usize,
            "--rate" => args.rate = number("--rate")?,
            "--words" => args.words = number("--words")? as usize,
            "--concurrency" => args.concurrency = number("--concurrency")? as usize,
            "--duration" => args.duration = number("--duration")?,
            "--pids" => {
                for pair in value.split(',').filter(|p| !p.is_empty()) {
                    let (name, pid) = pair.split_once('=').ok_or(format!("--pids: {pair}"))?;
                    let pid = pid.parse().map_err(|_| format!("--pids: {pair}"))?;
                    args.services.push((name.to_owned(), pid));
                }
            }
            "--form" => {
                args.form = match value.as_str() {
                    "sse" => Form::Sse,
                    "openai" => Form::OpenAi,
                    "ws" => Form::Ws,
                    other => return Err(format!("--form: {other} (sse, openai or ws)")),
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// One turn as the client saw it.
#[derive(Default)]
struct Turn {
    first_event: Option<Duration>,
    done: Option<Duration>,
    events: u64,
    error: Option<String>,
}

struct Client {
    http: reqwest::Client,
    gateway: String,
    token: String,
}

impl Client {
    async fn log_in(gateway: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| e.to_string())?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let credentials = json!({"username": format!("load-{stamp}"), "password": format!("load password {stamp}")});
        let post = |path: &str| {
            http.post(format!("{gateway}/api/v1/auth/{path}"))
                .json(&credentials)
                .send()
        };
        let registered = post("register").await.map_err(|e| e.to_string())?;
        if !registered.status().is_success() {
            return Err(format!("register: {}", registered.status()));
        }
        let answer = post("login").await.map_err(|e| e.to_string())?;
        if !answer.status().is_success() {
            return Err(format!("login: {}", answer.status()));
        }
        let body: Value = answer.json().await.map_err(|e| e.to_string())?;
        let token = body["access_token"].as_str().ok_or("no access_token")?;
        Ok(Self {
            http: http.clone(),
            gateway: gateway.to_owned(),
            token: token.to_owned(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.gateway))
            .bearer_auth(&self.token)
    }

    async fn conversation(&self) -> Result<String, String> {
        let answer = self
            .request(reqwest::Method::POST, "/api/v1/conversations")
            .json(&json!({"agent_id": "math"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = answer.json().await.map_err(|e| e.to_string())?;
        body["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("no id: {body}"))
    }

    async fn turn(&self, form: Form, conversation: &str, text: &str) -> Turn {
        match form {
            Form::Ws => self.ws_turn(conversation, text).await,
            _ => self.http_turn(form, conversation, text).await,
        }
    }

    /// A turn over SSE or the OpenAI form; the stream read as bytes and
    /// split into events as they come (`\n\n`), its last event parsed.
    async fn http_turn(&self, form: Form, conversation: &str, text: &str) -> Turn {
        let mut turn = Turn::default();
        let start = Instant::now();
        let request = match form {
            Form::Sse => self
                .request(
                    reqwest::Method::POST,
                    &format!("/api/v1/conversations/{conversation}/messages/stream"),
                )
                .json(&json!({"message": text})),
            _ => self
                .request(reqwest::Method::POST, "/api/v1/chat/completions")
                .json(&json!({"model": "math", "stream": true,
                              "messages": [{"role": "user", "content": text}]})),
        };
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(err) => {
                turn.error = Some(format!("request: {err}"));
                return turn;
            }
        };
        if answer.status() != 200 {
            turn.error = Some(format!("status {}", answer.status().as_u16()));
            return turn;
        }
        let mut body = Vec::new();
        let mut stream = answer.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    turn.error = Some(format!("stream: {err}"));
                    return turn;
                }
            };
            turn.first_event.get_or_insert_with(|| start.elapsed());
            // Events end with a blank line; count the ones this chunk ends
            // (one straddling two chunks counts once, with its end).
            let before = body.len().saturating_sub(1);
            body.extend_from_slice(&chunk);
            turn.events += count(&body[before..], b"\n\n") as u64;
        }
        turn.done = Some(start.elapsed());
        let text = String::from_utf8_lossy(&body);
        let data: Vec<&str> = text
            .split("\n\n")
            .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
            .collect();
        turn.error = match form {
            Form::Sse => {
                let last: Value = data
                    .last()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or_default();
                if data.iter().any(|d| d.contains(r#""type":"error""#)) {
                    Some("error event".into())
                } else if last["type"] != "done" || last["status"] != "complete" {
                    Some(format!("ended without a complete done: {last}"))
                } else {
                    None
                }
            }
            _ => {
                if data.last() != Some(&"[DONE]") {
                    Some("ended without [DONE]".into())
                } else if data.iter().any(|d| d.starts_with(r#"{"error""#)) {
                    Some("error chunk".into())
                } else {
                    None
                }
            }
        };
        turn
    }

    /// A turn over `/ws/chat` (envelope dialect): the prompt sent once the
    /// session is ready; done at the final `assistant_response`.
    async fn ws_turn(&self, conversation: &str, text: &str) -> Turn {
        let mut turn = Turn::default();
        let url = format!(
            "{}/ws/chat?conversation_id={conversation}",
            self.gateway.replacen("http", "ws", 1)
        );
        let mut request = match url.into_client_request() {
            Ok(request) => request,
            Err(err) => {
                turn.error = Some(err.to_string());
                return turn;
            }
        };
        if let Ok(value) = format!("Bearer {}", self.token).parse() {
            request.headers_mut().insert("authorization", value);
        }
        let start = Instant::now();
        let (mut socket, _) = match tokio_tungstenite::connect_async(request).await {
            Ok(connected) => connected,
            Err(err) => {
                turn.error = Some(format!("handshake: {err}"));
                return turn;
            }
        };
        let prompt = json!({"type": "user_prompt", "data": {"prompt": text}}).to_string();
        let mut sent = false;
        while let Some(frame) = socket.next().await {
            let frame = match frame {
                Ok(tungstenite::Message::Text(frame)) => frame,
                Ok(tungstenite::Message::Close(close)) => {
                    let why =
                        close.map_or("no reason".into(), |c| format!("{} {}", c.code, c.reason));
                    turn.error = Some(format!("closed by the server: {why}"));
                    return turn;
                }
                Ok(_) => continue,
                Err(err) => {
                    turn.error = Some(format!("socket: {err}"));
                    return turn;
                }
            };
            let frame: Value = serde_json::from_str(&frame).unwrap_or_default();
            match frame["type"].as_str() {
                Some("session_ready") if !sent => {
                    sent = true;
                    if let Err(err) = socket
                        .send(tungstenite::Message::text(prompt.clone()))
                        .await
                    {
                        turn.error = Some(format!("send: {err}"));
                        return turn;
                    }
                }
                Some("assistant_response") => {
                    turn.first_event.get_or_insert_with(|| start.elapsed());
                    turn.events += 1;
                    if frame["data"]["chunk"] == false {
                        turn.done = Some(start.elapsed());
                        let _ = socket.close(None).await;
                        return turn;
                    }
                }
                Some("error") => {
                    turn.error = Some(format!("error frame: {}", frame["error"]));
                    return turn;
                }
                _ => {}
            }
        }
        turn.error = Some("closed before the final assistant_response".into());
        turn
    }

    /// What the conversation holds: `None` when it is the user's message and
    /// the echoed reply, both complete; else what is wrong.
    async fn read_back(&self, conversation: &str, text: &str) -> Option<String> {
        let answer = self
            .request(
                reqwest::Method::GET,
                &format!("/api/v1/conversations/{conversation}/messages?limit=100"),
            )
            .send()
            .await;
        let page: Value = match answer {
            Ok(answer) => answer.json().await.unwrap_or_default(),
            Err(err) => return Some(format!("read-back: {err}")),
        };
        let items = page["items"].as_array().cloned().unwrap_or_default();
        match items.len() {
            0 | 1 => return Some("lost".into()),
            2 => {}
            _ => return Some("duplicated".into()),
        }
        let complete = items.iter().all(|m| m["status"] == "complete");
        if !complete || items[0]["role"] != "user" || items[1]["role"] != "assistant" {
            return Some("not complete".into());
        }
        (items[1]["content"] != text).then(|| "wrong text".into())
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// This process's CPU time so far (user + system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

/// A process's CPU time so far (user + system), from `/proc/<pid>/stat`.
fn cpu_seconds_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime, stime
    // are the 12th and 13th after it, in clock ticks (100 per second).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A process's resident memory in KiB (`VmRSS`), 0 when it is gone.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> std::process::ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("confab-loadgen: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            eprintln!("confab-loadgen: {err}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let client = Arc::new(Client::log_in(&args.gateway).await?);
    let text: Arc<str> = (0..args.words)
        .map(|i| WORDS[i % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
        .into();
    let mut conversations = Vec::with_capacity(args.n);
    if args.concurrency == 0 && args.form != Form::OpenAi {
        for _ in 0..args.n {
            conversations.push(client.conversation().await?);
        }
    }

    let pids: Vec<u32> = args.services.iter().map(|(_, pid)| *pid).collect();
    let idle: Vec<u64> = pids.iter().map(|pid| rss_kib(*pid)).collect();
    let services_before: Vec<f64> = pids
        .iter()
        .map(|pid| cpu_seconds_of(&pid.to_string()))
        .collect();
    // Each service's peak RSS during the burst, read every 50 ms.
    let peaks = Arc::new(std::sync::Mutex::new(idle.clone()));
    let sampler = {
        let (peaks, pids) = (peaks.clone(), pids.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(50));
            loop {
                every.tick().await;
                let mut peaks = peaks.lock().unwrap_or_else(|p| p.into_inner());
                for (peak, pid) in peaks.iter_mut().zip(&pids) {
                    *peak = (*peak).max(rss_kib(*pid));
                }
            }
        })
    };
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let turns = if args.concurrency > 0 {
        let (done, made) = saturate(&client, &args, &text).await?;
        conversations = made;
        done
    } else {
        burst(&client, &args, &text, &conversations).await?
    };
    let wall = started.elapsed().as_secs_f64();
    // Turns run, and turns open at once at the peak.
    let n = turns.len();
    let open = if args.concurrency > 0 {
        args.concurrency
    } else {
        n
    };
    let cpu = cpu_seconds() - cpu_before;
    sampler.abort();
    let services_cpu: Vec<f64> = pids
        .iter()
        .zip(&services_before)
        .map(|(pid, before)| cpu_seconds_of(&pid.to_string()) - before)
        .collect();
    let peaks = peaks.lock().unwrap_or_else(|p| p.into_inner()).clone();

    let mut wrong = std::collections::BTreeMap::<String, usize>::new();
    if args.form != Form::OpenAi {
        for conversation in &conversations {
            if let Some(what) = client.read_back(conversation, &text).await {
                *wrong.entry(what).or_default() += 1;
            }
        }
    }
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    for turn in &turns {
        if let Some(error) = &turn.error {
            let kind: String = error.chars().take(60).collect();
            *errors.entry(kind).or_default() += 1;
        }
    }
    let ms = |pick: fn(&Turn) -> Option<Duration>| {
        let mut values: Vec<f64> = turns
            .iter()
            .filter_map(pick)
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        values.sort_by(f64::total_cmp);
        values
    };
    let first = ms(|t| t.first_event);
    let done = ms(|t| t.done);
    let events: u64 = turns.iter().map(|t| t.events).sum();
    let failed: usize = errors.values().sum();
    let form = match args.form {
        Form::Sse => "sse",
        Form::OpenAi => "openai",
        Form::Ws => "ws",
    };
    let how = if args.concurrency > 0 {
        format!(
            "{} clients back to back for {} s (saturation)",
            args.concurrency, args.duration
        )
    } else if args.rate > 0.0 {
        format!("{} turns/s", args.rate)
    } else {
        "all at once".into()
    };
    println!("form {form}, {n} turns, {} words, {how}", args.words);
    println!(
        "errors {failed} | first event p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} ms | done p50 {:.1} p99 {:.1} ms | events {events} | {:.1} turns/s over {wall:.2} s | client CPU {cpu:.2} s ({:.2} ms/turn)",
        percentile(&first, 50.0),
        percentile(&first, 90.0),
        percentile(&first, 99.0),
        percentile(&first, 100.0),
        percentile(&done, 50.0),
        percentile(&done, 99.0),
        n as f64 / wall,
        cpu * 1e3 / n.max(1) as f64,
    );
    for (kind, n) in &errors {
        eprintln!("  {n} x {kind}");
    }
    let mut total = (0.0, 0u64, 0u64);
    if !args.services.is_empty() {
        // A token is a word: the builtin model streams one per chunk.
        let tokens = (n * args.words).max(1) as f64;
        let (n, open) = (n.max(1) as f64, open.max(1) as f64);
        println!(
            "{:<20} {:>9} {:>11} {:>11} {:>10} {:>10} {:>13}",
            "service", "CPU s", "ms/turn", "µs/token", "idle MiB", "peak MiB", "KiB/open turn"
        );
        for (i, (name, _)) in args.services.iter().enumerate() {
            let (cpu, idle, peak) = (services_cpu[i], idle[i], peaks[i]);
            total = (total.0 + cpu, total.1 + idle, total.2 + peak);
            println!(
                "{name:<20} {cpu:>9.2} {:>11.2} {:>11.1} {:>10.1} {:>10.1} {:>13.1}",
                cpu * 1e3 / n,
                cpu * 1e6 / tokens,
                idle as f64 / 1024.0,
                peak as f64 / 1024.0,
                peak.saturating_sub(idle) as f64 / open,
            );
        }
        println!(
            "{:<20} {:>9.2} {:>11.2} {:>11.1} {:>10.1} {:>10.1} {:>13.1}",
            "all services",
            total.0,
            total.0 * 1e3 / n,
            total.0 * 1e6 / tokens,
            total.1 as f64 / 1024.0,
            total.2 as f64 / 1024.0,
            total.2.saturating_sub(total.1) as f64 / open,
        );
        println!(
            "client (this process): {cpu:.2} s CPU, {:.2} ms/turn",
            cpu * 1e3 / n
        );
    }
    if args.form != Form::OpenAi {
        if wrong.is_empty() {
            println!(
                "read-back: {} conversations, each the message and its echoed reply, both complete",
                conversations.len()
            );
        } else {
            println!("read-back: {wrong:?}");
        }
    }
    // One line for scripts that compare runs (infra/bench/turns.sh).
    println!(
        "summary form={form} turns={n} errors={failed} wrong={} turns_per_s={:.1} cpu_ms_per_turn={:.3} kib_per_open_turn={:.1} first_p50_ms={:.1} done_p99_ms={:.1} client_ms_per_turn={:.3}",
        wrong.values().sum::<usize>(),
        n as f64 / wall,
        total.0 * 1e3 / n.max(1) as f64,
        total.2.saturating_sub(total.1) as f64 / open.max(1) as f64,
        percentile(&first, 50.0),
        percentile(&done, 99.0),
        cpu * 1e3 / n.max(1) as f64,
    );
    Ok(failed == 0 && wrong.is_empty() && n > 0)
}

/// The `n` turns of `conversations` (new ones for `openai`), all at once or
/// at the given rate.
async fn burst(
    client: &Arc<Client>,
    args: &Args,
    text: &Arc<str>,
    conversations: &[String],
) -> Result<Vec<Turn>, String> {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.n);
    for i in 0..args.n {
        if args.rate > 0.0 {
            let at = started + Duration::from_secs_f64(i as f64 / args.rate);
            tokio::time::sleep_until(at.into()).await;
        }
        let conversation = conversations.get(i).cloned().unwrap_or_default();
        let (client, text) = (client.clone(), text.clone());
        let form = args.form;
        tasks.push(tokio::spawn(async move {
            client.turn(form, &conversation, &text).await
        }));
    }
    let mut turns = Vec::with_capacity(args.n);
    for task in tasks {
        turns.push(task.await.map_err(|e| e.to_string())?);
    }
    Ok(turns)
}

/// `concurrency` clients running turns back to back until `duration` is
/// over; the turns and the conversations they made.
async fn saturate(
    client: &Arc<Client>,
    args: &Args,
    text: &Arc<str>,
) -> Result<(Vec<Turn>, Vec<String>), String> {
    let until = Instant::now() + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let (client, text) = (client.clone(), text.clone());
        let form = args.form;
        tasks.push(tokio::spawn(async move {
            let (mut turns, mut made) = (Vec::new(), Vec::new());
            while Instant::now() < until {
                let conversation = match form {
                    Form::OpenAi => String::new(),
                    _ => match client.conversation().await {
                        Ok(id) => id,
                        Err(err) => {
                            turns.push(Turn {
                                error: Some(format!("creating the conversation: {err}")),
                                ..Turn::default()
                            });
                            // Not a busy loop against a service that is down.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                turns.push(client.turn(form, &conversation, &text).await);
                made.push(conversation);
            }
            (turns, made)
        }));
    }
    let (mut turns, mut made) = (Vec::new(), Vec::new());
    for task in tasks {
        let (t, m) = task.await.map_err(|e| e.to_string())?;
        turns.extend(t);
        made.extend(m.into_iter().filter(|c| !c.is_empty()));
    }
    Ok((turns, made))
}
