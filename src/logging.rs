//! Structured logs for Lambda. Lambda's log settings (AWS_LAMBDA_LOG_LEVEL / RUST_LOG,
//! AWS_LAMBDA_LOG_FORMAT) are honoured, except that the runtime's raw-event trace is
//! always off: the raw event carries the caller's credentials.

use lambda_runtime::tracing::subscriber::{self, filter::LevelFilter, EnvFilter};

const RAW_EVENT_TARGET: &str = "lambda_runtime::layers::api_response=info";

pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let mut filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    if let Ok(directive) = RAW_EVENT_TARGET.parse() {
        filter = filter.add_directive(directive);
    }
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}
