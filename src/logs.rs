//! Reading the last lines of a task's log stream, as CloudWatch Logs really answers:
//! "A returned page might only be partially full, or even empty. For example, if the
//! page is partially full or empty, there might still be more events to read ... As long
//! as the nextBackwardToken or nextForwardToken returned is NOT equal to the nextToken
//! that you passed, pagination is not finished" (CloudWatch Logs API Reference,
//! GetLogEvents). So one page is never taken for the whole tail: pages are read backward
//! from the end until enough lines are in, the token comes back unchanged, or the call
//! deadline nears. Written once over the gateway's one-page call, so the in-memory twin's
//! partial and empty pages exercise this very loop.

use crate::ecs::{Ecs, Fault, LogPageQuery};
use crate::machine::LogQuery;

/// Pages read at most for one tail: a page holds up to 10,000 events or 1 MB, so this
/// only bounds a stream that keeps answering empty pages.
pub const MAX_PAGES: usize = 20;

/// The last `query.lines` lines of the stream, oldest first; `None` when there is no
/// such stream. `now` and `by` bound the reading: no page is asked for once less than
/// a second is left (what was read is kept).
pub async fn read_tail<E: Ecs>(
    ecs: &E,
    query: &LogQuery,
    clock: &impl handler_kit::clock::Clock,
    by: f64,
) -> Result<Option<Vec<String>>, Fault> {
    let want = query.lines.clamp(1, 10_000) as usize;
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut have = 0usize;
    let mut token: Option<String> = None;
    for page_number in 0..MAX_PAGES {
        if page_number > 0 && by - clock.now() < 1.0 {
            break;
        }
        let page = ecs
            .log_page(
                &LogPageQuery {
                    group: query.group.clone(),
                    stream: query.stream.clone(),
                    region: query.region.clone(),
                    start_time_ms: query.since.map(|s| (s * 1000.0) as i64),
                    limit: (want - have).clamp(1, 10_000) as u32,
                    token: token.clone(),
                },
                by,
            )
            .await?;
        let Some(page) = page else {
            return Ok(if page_number == 0 {
                None
            } else {
                Some(join(pages, want))
            });
        };
        have += page.messages.len();
        pages.push(page.messages);
        if have >= want {
            break;
        }
        match page.backward_token {
            // The same token back: the beginning of the stream (or of startTime).
            Some(next) if Some(&next) != token.as_ref() => token = Some(next),
            _ => break,
        }
    }
    Ok(Some(join(pages, want)))
}

/// Pages read backward (the latest first) as one list, oldest first, its last `want`.
fn join(pages: Vec<Vec<String>>, want: usize) -> Vec<String> {
    let mut lines: Vec<String> = pages.into_iter().rev().flatten().collect();
    if lines.len() > want {
        lines.drain(..lines.len() - want);
    }
    lines
}
