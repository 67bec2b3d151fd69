//! Latency of the kiosk's HTTP API under a bounded loopback load: `bench_http URL
//! [REQUESTS] [CONCURRENCY] [TOKEN]` sends REQUESTS (default 1000) GETs to each of
//! `/api/status` and `/api/decisions?since=0` from CONCURRENCY (default 1) keep-alive
//! clients, after 20 untimed ones, and prints p50/p95/p99/max in ms and the request rate
//! as JSON. Only loopback URLs are accepted. Used by `scripts/bench-http.sh`.

use std::time::{Duration, Instant};

use serde_json::json;

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, token: Option<&str>) -> anyhow::Result<usize> {
    let mut rq = agent.get(url);
    if let Some(t) = token {
        rq = rq.header("Authorization", format!("Bearer {t}"));
    }
    let mut r = rq.call()?;
    Ok(r.body_mut().read_to_vec()?.len())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let requests: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let concurrency: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let token = args
        .next()
        .or_else(|| std::env::var("SLEEVE_HTTP_TOKEN").ok());
    let authority = base
        .strip_prefix("http://")
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    anyhow::ensure!(
        matches!(host, "127.0.0.1" | "localhost" | "::1"),
        "bench_http only loads loopback servers, not '{host}'"
    );
    anyhow::ensure!(
        (1..=100_000).contains(&requests) && (1..=64).contains(&concurrency),
        "REQUESTS 1..=100000, CONCURRENCY 1..=64"
    );
    let mut report = serde_json::Map::new();
    for path in ["/api/status", "/api/decisions?since=0"] {
        let url = format!("{base}{path}");
        let warm = agent();
        for _ in 0..20 {
            get(&warm, &url, token.as_deref())?;
        }
        let t0 = Instant::now();
        let per = requests.div_ceil(concurrency);
        let threads: Vec<_> = (0..concurrency)
            .map(|c| {
                let (url, token) = (url.clone(), token.clone());
                let n = per.min(requests.saturating_sub(c * per));
                std::thread::spawn(move || -> anyhow::Result<(Vec<f64>, usize)> {
                    let a = agent();
                    let mut times = Vec::with_capacity(n);
                    let mut bytes = 0;
                    for _ in 0..n {
                        let t = Instant::now();
                        bytes = get(&a, &url, token.as_deref())?;
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok((times, bytes))
                })
            })
            .collect();
        let mut times = Vec::new();
        let mut bytes = 0;
        for t in threads {
            let (v, b) = t.join().map_err(|_| anyhow::anyhow!("client panicked"))??;
            times.extend(v);
            bytes = bytes.max(b);
        }
        let wall = t0.elapsed().as_secs_f64();
        times.sort_by(f64::total_cmp);
        report.insert(
            path.to_string(),
            json!({
                "requests": times.len(),
                "concurrency": concurrency,
                "response_bytes": bytes,
                "p50_ms": percentile(&times, 0.50),
                "p95_ms": percentile(&times, 0.95),
                "p99_ms": percentile(&times, 0.99),
                "max_ms": times.last().copied().unwrap_or(f64::NAN),
                "requests_per_s": times.len() as f64 / wall,
            }),
        );
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
