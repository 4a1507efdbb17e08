//! Structured logs for Lambda, and a copy of each line of the current invocation for the
//! provider log (see `provider_log`). Lambda's log settings (AWS_LAMBDA_LOG_LEVEL or
//! RUST_LOG as a level, AWS_LAMBDA_LOG_FORMAT) are honoured, except that the runtime's
//! raw-event trace is always off: the raw event carries the caller's credentials.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where the runtime traces each raw event, at debug level and below.
const RAW_EVENT_TARGET: &str = "lambda_runtime::layers::api_response";
/// At most this much of an invocation's log is kept for the provider log.
const CAPTURE_LINES: usize = 1000;
const CAPTURE_BYTES: usize = 512 * 1024;

/// Lines of the current invocation: (epoch milliseconds, text).
static CAPTURED: Mutex<Capture> = Mutex::new(Capture {
    lines: Vec::new(),
    bytes: 0,
    dropped: 0,
});

struct Capture {
    lines: Vec<(i64, String)>,
    bytes: usize,
    dropped: usize,
}

pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    // A level and one target capped: no per-target directives (RUST_LOG=a=debug), which
    // would need tracing-subscriber's env-filter and its regex engine in the handler.
    let filter = Targets::new()
        .with_default(level)
        .with_target(RAW_EVENT_TARGET, level.min(LevelFilter::INFO));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(Tee)
        .with_max_level(LevelFilter::TRACE);
    let installed = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(filter)
            .try_init()
    } else {
        builder.finish().with(filter).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = installed;
}

/// Forgets what was captured: a new invocation begins.
pub fn start_invocation() {
    if let Ok(mut capture) = CAPTURED.lock() {
        capture.lines.clear();
        capture.bytes = 0;
        capture.dropped = 0;
    }
}

/// The lines of the invocation so far (and how many were left out past the limits).
pub fn take_invocation() -> (Vec<(i64, String)>, usize) {
    match CAPTURED.lock() {
        Ok(mut capture) => {
            capture.bytes = 0;
            (
                std::mem::take(&mut capture.lines),
                std::mem::take(&mut capture.dropped),
            )
        }
        Err(_) => (Vec::new(), 0),
    }
}

pub fn epoch_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Each event goes to stdout (Lambda's own log) and to the capture.
struct Tee;

struct Line(Vec<u8>);

impl<'a> MakeWriter<'a> for Tee {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::with_capacity(256))
    }
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let _ = std::io::stdout().lock().write_all(&self.0);
        let text = String::from_utf8_lossy(&self.0).trim_end().to_string();
        if let Ok(mut capture) = CAPTURED.lock() {
            if capture.lines.len() >= CAPTURE_LINES || capture.bytes + text.len() > CAPTURE_BYTES {
                capture.dropped += 1;
            } else {
                capture.bytes += text.len();
                capture.lines.push((epoch_millis(), text));
            }
        }
    }
}
