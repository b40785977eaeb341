//! The HTTPS routes (docs/design.md section 8) and the HTTP-level checks before a body reaches the
//! admission handler.
//!
//! | request | answer |
//! |---|---|
//! | `POST /mutate`, `/validate`, `/{mutate,validate}/{enforce,audit,off}` with a JSON body | 200 AdmissionReview |
//! | the same with a body that is JSON but not a usable review | 200 AdmissionReview, `allowed: false`, code 400 |
//! | a body that is not JSON at all (empty, text) | 400 plain |
//! | `Content-Type` other than `application/json` | 415 plain |
//! | body over 8 MiB | 413 plain, connection closed (bodies up to 16 MiB are read and discarded first, so the client sees the 413; larger ones are cut off) |
//! | body not complete within the apiserver's timeout (at most 30 s) | 408 plain |
//! | body slower than 64 KiB/s after its first second ([`MIN_BODY_RATE`]) | 408 plain, connection closed |
//! | bodies held across all requests over the budget (`--max-buffered-bytes`) | 429 plain, `Retry-After: 1`, connection closed |
//! | another method on those paths | 405 plain |
//! | unknown path, unknown mode | 404 plain |
//! | `GET /healthz` | 200; `GET /readyz`: 200, or 503 while draining |
//! | a review that finds no free analysis slot in time (overload) | 429 plain, `Retry-After: 1` |
//!
//! Overload: at most `--max-inflight` reviews are analysed at once. A review waits for a slot
//! for at most half of the apiserver's `?timeout=` (10 s when absent), and never more than
//! [`MAX_QUEUE_WAIT`] nor past the timeout minus [`TIMEOUT_MARGIN`]; then it is shed with 429
//! and `Retry-After: 1`, which the apiserver retries. The answer comes quickly instead of after
//! the apiserver has given up, and the queue cannot grow past what can be served in time. A
//! review that needs a script parsed waits for the (bounded) blocking pool and the parse
//! workers; it too is shed with 429 when its analysis cannot finish before the timeout minus
//! [`TIMEOUT_MARGIN`].
//!
//! Memory: the analysis slot is taken before the body is read, so at most `--max-inflight`
//! bodies are being read or analysed; each may hold [`FREE_BODY_BYTES`] freely, and every byte
//! beyond that is taken from a budget shared by all requests (`--max-buffered-bytes`) as it
//! arrives. A body that would overdraw the budget is refused with 429 at once, so a few clients
//! sending large bodies slowly cannot stall the others. Reviews with bodies over
//! [`INLINE_BODY_BYTES`] (a pod with thousands of containers) are analysed on the blocking
//! pool, never on the async threads that serve `/healthz` and the other connections, and at
//! most [`crate::server::state::LARGE_ANALYSES`] at once.

use crate::engine::Mode;
use crate::sandbox::{Ticket, with_ticket};
use crate::server::admission::{self, Reply};
use crate::server::decision::Endpoint;
use crate::server::resolve::{Parsing, Shed};
use crate::server::state::App;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest request body accepted. An UPDATE review (object + oldObject, each capped at 3 MiB
/// by the apiserver) stays under it.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long a request body may take to arrive (the apiserver's longest webhook timeout).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies over [`MAX_BODY`] up to this size are read and discarded before the 413, so that a
/// client still sending sees the answer; larger ones are cut off.
pub const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
/// The apiserver's webhook timeout when the request does not say (`timeoutSeconds` default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest timeout honoured from `?timeout=` (the apiserver's maximum `timeoutSeconds`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for an analysis slot.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Time kept for the analysis and the answer to travel back before the apiserver's timeout.
pub const TIMEOUT_MARGIN: Duration = Duration::from_millis(500);
/// Body bytes each request may hold without drawing on the shared budget (a pod's review is a
/// few KiB to a few tens of KiB).
pub const FREE_BODY_BYTES: usize = 64 * 1024;

// A review decoded without the values it is cut of (`review_cuts`) holds one copy of its body
// beside it at a time.
const _: () = assert!(2 * crate::server::review_cuts::MAX_BODY_BYTES <= FREE_BODY_BYTES);

/// Slowest body accepted, after [`BODY_RATE_GRACE`]: a body that has not reached this rate
/// since it started is cut off with 408, so a client trickling a body holds its analysis slot
/// for about a second, not the whole timeout. The apiserver sends a body at once.
pub const MIN_BODY_RATE: usize = 64 * 1024;
/// Time a body gets before [`MIN_BODY_RATE`] applies.
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(1);
/// Largest body analysed on the async thread that read it (when the analysis needs no parse
/// worker); larger ones go to the blocking pool.
pub const INLINE_BODY_BYTES: usize = 64 * 1024;

/// The router of the TLS port.
pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/mutate", admission_route(Endpoint::Mutate, None))
        .route("/validate", admission_route(Endpoint::Validate, None));
    for mode in [Mode::Enforce, Mode::Audit, Mode::Off] {
        router = router
            .route(
                &format!("/mutate/{}", mode.as_str()),
                admission_route(Endpoint::Mutate, Some(mode)),
            )
            .route(
                &format!("/validate/{}", mode.as_str()),
                admission_route(Endpoint::Validate, Some(mode)),
            );
    }
    router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

fn admission_route(endpoint: Endpoint, mode: Option<Mode>) -> MethodRouter<Arc<App>> {
    post(move |State(app): State<Arc<App>>, req: Request| admission(app, endpoint, mode, req))
}

async fn admission(
    app: Arc<App>,
    endpoint: Endpoint,
    mode: Option<Mode>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let timeout = request_timeout(req.uri().query());
    let reject = |status: StatusCode, message: &'static str| {
        app.metrics
            .request(endpoint.as_str(), "", "", "rejected", started.elapsed());
        plain(status, message)
    };
    if !is_json(req.headers()) {
        return reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json\n",
        );
    }
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The slot first: a body is read only by a review that may be analysed, so the slots bound
    // the bodies being read as well as the analyses.
    let _counted = app.metrics.inflight_guard();
    let wait = queue_wait(timeout, started.elapsed());
    let slot = match Arc::clone(app.inflight()).try_acquire_owned() {
        Ok(slot) => Some(slot),
        Err(_) if wait.is_zero() => None,
        Err(_) => tokio::time::timeout(wait, Arc::clone(app.inflight()).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok),
    };
    let Some(slot) = slot else {
        app.metrics.shed();
        tracing::warn!(
            endpoint = endpoint.as_str(),
            max_inflight = app.max_inflight(),
            waited_ms = started.elapsed().as_millis() as u64,
            "overloaded: review shed with 429"
        );
        return overloaded();
    };
    // The apiserver sends the body right after the head: a body slower than its own timeout
    // can only come from a client that holds the slot on purpose.
    let body_timeout = BODY_TIMEOUT.min(timeout);
    let (body, held) = match tokio::time::timeout(
        body_timeout,
        read_body(req.into_body(), length, MAX_BODY, app.body_budget()),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => {
            return closing(reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is larger than 8 MiB\n",
            ));
        }
        Ok(Err(BodyError::OverBudget)) => {
            app.metrics.limits.limit_hit("body-budget");
            app.metrics
                .request(endpoint.as_str(), "", "", "rejected", started.elapsed());
            tracing::warn!(
                endpoint = endpoint.as_str(),
                content_length = length,
                "request bodies over the buffered-bytes budget: review refused with 429"
            );
            return closing(overloaded());
        }
        Ok(Err(BodyError::TooSlow)) => {
            app.metrics.limits.limit_hit("body-rate");
            tracing::warn!(
                endpoint = endpoint.as_str(),
                content_length = length,
                "request body slower than the rate floor: cut off with 408"
            );
            return closing(reject(
                StatusCode::REQUEST_TIMEOUT,
                "the request body arrives too slowly\n",
            ));
        }
        Ok(Err(BodyError::Read(e))) => {
            tracing::debug!(error = %e, "reading the request body failed");
            return reject(
                StatusCode::BAD_REQUEST,
                "the request body could not be read\n",
            );
        }
        Err(_) => {
            return reject(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time\n",
            );
        }
    };
    let small = body.len() <= INLINE_BODY_BYTES;
    let deadline = (started + timeout.saturating_sub(TIMEOUT_MARGIN)).max(Instant::now());
    let reply = if small {
        // Answered on this async thread: most reviews carry scripts the analyzer knows
        // (cached); scripts to parse go to the blocking pool within the namespace's share
        // (see `server::resolve`), look-ups are awaited within their deadlines.
        let parsing = if app.analyzer_blocks {
            Parsing::Pool {
                deadline,
                queue_wait: queue_wait(timeout, started.elapsed()),
                slot: Arc::new(slot),
            }
        } else {
            Parsing::Here
        };
        let answered = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            admission::answer_with(&app, endpoint, mode, &body, started, &parsing),
        )
        .await;
        drop(parsing);
        drop(held);
        match answered {
            Ok(Ok(reply)) => reply,
            Ok(Err(Shed)) => Reply::Shed,
            Err(_) => return shed_late(&app, endpoint, started),
        }
    } else {
        // Thousands of containers are milliseconds to seconds of CPU: on the blocking pool,
        // never on a thread that serves other connections, a few at a time.
        let remaining = deadline.saturating_duration_since(Instant::now());
        let large =
            match tokio::time::timeout(remaining, Arc::clone(app.large_analyses()).acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                _ => {
                    app.metrics.shed();
                    tracing::warn!(
                        endpoint = endpoint.as_str(),
                        bytes = body.len(),
                        "overloaded: no slot for a large review in time; shed with 429"
                    );
                    return overloaded();
                }
            };
        let analysis_app = Arc::clone(&app);
        // The review's parses stop when it is shed or its time is up (see `sandbox::ticket`).
        let ticket = Ticket::new(deadline);
        let analysis_ticket = Arc::clone(&ticket);
        // The slot goes with the analysis: it is held until the analysis ends, even if the
        // client goes away first (the verdicts it caches serve the apiserver's retry).
        let analysis = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let _held = held;
            let _large = large;
            with_ticket(analysis_ticket, || {
                admission::answer(&analysis_app, endpoint, mode, &body, started)
            })
        });
        // Dropped with this future (client gone) or on shedding: the parses stop.
        let _cancel_on_exit = CancelOnDrop(Arc::clone(&ticket));
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, analysis).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the analysis task failed");
                Reply::Plain(500, "pidone failed to analyse the request\n")
            }
            Err(_) => return shed_late(&app, endpoint, started),
        }
    };
    match reply {
        Reply::Review(json) => {
            let mut response = Response::new(Body::from(json));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Reply::Plain(code, message) => plain(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message,
        ),
        Reply::Shed => overloaded(),
    }
}

/// Cancels a review's ticket when the handler ends, however it ends.
struct CancelOnDrop(Arc<Ticket>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The apiserver's timeout from `?timeout=10s` (Go duration syntax; whole seconds in
/// practice), [`DEFAULT_TIMEOUT`] when absent or unreadable, at most [`MAX_TIMEOUT`].
pub fn request_timeout(query: Option<&str>) -> Duration {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.strip_prefix("timeout="))
        .find_map(|v| humantime::parse_duration(v).ok())
        .filter(|d| !d.is_zero())
        .map_or(DEFAULT_TIMEOUT, |d| d.min(MAX_TIMEOUT))
}

/// How long a review may wait for an analysis slot, `elapsed` after its first byte: half the
/// timeout, at most [`MAX_QUEUE_WAIT`], and never past the timeout minus [`TIMEOUT_MARGIN`].
/// Zero means: take a free slot or be shed at once.
pub fn queue_wait(timeout: Duration, elapsed: Duration) -> Duration {
    let half = (timeout / 2).min(MAX_QUEUE_WAIT);
    let latest = timeout.saturating_sub(TIMEOUT_MARGIN);
    half.min(latest.saturating_sub(elapsed))
}

/// 429 with `Retry-After: 1`: the apiserver retries it.
/// A review not answered before the apiserver's timeout: shed with 429.
fn shed_late(app: &App, endpoint: Endpoint, started: Instant) -> Response {
    app.metrics.shed();
    tracing::warn!(
        endpoint = endpoint.as_str(),
        waited_ms = started.elapsed().as_millis() as u64,
        "overloaded: the analysis did not finish in time; review shed with 429"
    );
    overloaded()
}

/// `response`, with the connection closed after it (the client misbehaved with its body).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn overloaded() -> Response {
    let mut response = plain(
        StatusCode::TOO_MANY_REQUESTS,
        "pidone is overloaded: retry shortly\n",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

#[derive(Debug)]
enum BodyError {
    TooLarge,
    /// Holding the body would overdraw the shared budget.
    OverBudget,
    /// The body arrives slower than [`MIN_BODY_RATE`].
    TooSlow,
    Read(axum::Error),
}

/// Bytes of the shared budget held by one body, grown as the body grows.
struct Held {
    budget: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    /// Makes sure `bytes` (what the body holds now) are covered: the free allowance plus
    /// permits; takes more permits without waiting, or fails.
    fn cover(&mut self, bytes: usize) -> Result<(), BodyError> {
        let covered = FREE_BODY_BYTES + self.permit.as_ref().map_or(0, |p| p.num_permits());
        if bytes <= covered {
            return Ok(());
        }
        let more = u32::try_from(bytes - covered).map_err(|_| BodyError::OverBudget)?;
        let extra = Arc::clone(&self.budget)
            .try_acquire_many_owned(more)
            .map_err(|_| BodyError::OverBudget)?;
        match &mut self.permit {
            Some(p) => p.merge(extra),
            None => self.permit = Some(extra),
        }
        Ok(())
    }
}

/// Reads the whole body. A body over `limit` is refused, but read to its end (and thrown
/// away) when it is at most [`DRAIN_LIMIT`], so that the client, still sending, gets to read
/// the 413 instead of a broken pipe. A body that arrives in one frame is used without a copy.
/// What the body holds (its buffer's capacity) beyond [`FREE_BODY_BYTES`] is taken from
/// `budget` as it arrives; the permit comes back with the body and must live as long as it.
async fn read_body(
    mut body: Body,
    length: Option<u64>,
    limit: usize,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyError> {
    let drain_limit = limit.saturating_mul(2).max(DRAIN_LIMIT);
    if length.is_some_and(|n| n > drain_limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut held = Held {
        budget: Arc::clone(budget),
        permit: None,
    };
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut too_large = length.is_some_and(|n| n > limit as u64);
    let started = tokio::time::Instant::now();
    loop {
        // The rate floor is broken once the bytes so far are what it asks for at this time.
        let floor_broken = started
            + BODY_RATE_GRACE
            + Duration::from_secs_f64(total as f64 / MIN_BODY_RATE as f64);
        let Ok(frame) = tokio::time::timeout_at(floor_broken, body.frame()).await else {
            return Err(BodyError::TooSlow);
        };
        let Some(frame) = frame else {
            break;
        };
        let Ok(data) = frame.map_err(BodyError::Read)?.into_data() else {
            continue;
        };
        total += data.len();
        if total > drain_limit {
            return Err(BodyError::TooLarge);
        }
        if total > limit || too_large {
            too_large = true;
            first = None;
            rest = Vec::new();
            held.permit = None;
            continue;
        }
        match first.take() {
            None if rest.is_empty() => {
                held.cover(data.len())?;
                first = Some(data);
            }
            previous => {
                let needed = total;
                if needed > rest.capacity() {
                    // Room for the announced length at once (within the limit), else double.
                    let grown = length
                        .map_or(rest.capacity().saturating_mul(2), |n| n as usize)
                        .min(limit)
                        .max(needed);
                    held.cover(grown)?;
                    rest.reserve_exact(grown - rest.len());
                }
                if let Some(p) = previous {
                    rest.extend_from_slice(&p);
                }
                rest.extend_from_slice(&data);
            }
        }
    }
    if too_large {
        return Err(BodyError::TooLarge);
    }
    let bytes = match first {
        Some(only) => only,
        None => Bytes::from(rest),
    };
    Ok((bytes, held.permit))
}

pub fn plain(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

async fn method_not_allowed() -> Response {
    plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
}

async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n")
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    readiness(&app)
}

/// `/readyz` on both ports.
pub fn readiness(app: &App) -> Response {
    if app.ready() {
        plain(StatusCode::OK, "ready\n")
    } else {
        plain(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (v, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/yaml", false),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            assert_eq!(is_json(&h), ok, "{v}");
        }
    }

    #[test]
    fn timeouts_from_the_query() {
        let s = Duration::from_secs;
        assert_eq!(request_timeout(None), DEFAULT_TIMEOUT);
        assert_eq!(request_timeout(Some("timeout=5s")), s(5));
        assert_eq!(request_timeout(Some("a=b&timeout=1s")), s(1));
        assert_eq!(request_timeout(Some("timeout=1m0s")), MAX_TIMEOUT);
        assert_eq!(request_timeout(Some("timeout=")), DEFAULT_TIMEOUT);
        assert_eq!(request_timeout(Some("timeout=0s")), DEFAULT_TIMEOUT);
        assert_eq!(request_timeout(Some("timeout=soon")), DEFAULT_TIMEOUT);
        assert_eq!(
            request_timeout(Some("timeout=1500ms")),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn queue_waits() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(queue_wait(s(10), ms(0)), MAX_QUEUE_WAIT);
        assert_eq!(queue_wait(s(1), ms(0)), ms(500));
        assert_eq!(queue_wait(s(1), ms(200)), ms(300));
        assert_eq!(queue_wait(s(1), s(2)), Duration::ZERO);
        assert_eq!(queue_wait(s(10), ms(9400)), ms(100));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let budget = Arc::new(Semaphore::new(1 << 20));
        let big = Body::from(vec![b'x'; 100]);
        assert!(matches!(
            read_body(big, None, 99, &budget).await,
            Err(BodyError::TooLarge)
        ));
        assert!(matches!(
            read_body(Body::empty(), Some(100), 99, &budget).await,
            Err(BodyError::TooLarge)
        ));
        assert!(matches!(
            read_body(Body::empty(), Some(DRAIN_LIMIT as u64 + 1), 99, &budget).await,
            Err(BodyError::TooLarge)
        ));
        let (ok, _) = read_body(Body::from("abc"), Some(3), 99, &budget)
            .await
            .unwrap();
        assert_eq!(&ok[..], b"abc");
        let stream = Body::from_stream(futures::stream::iter(
            ["ab", "cd", "ef"].map(|s| Ok::<_, std::io::Error>(Bytes::from(s))),
        ));
        let (joined, _) = read_body(stream, None, 99, &budget).await.unwrap();
        assert_eq!(&joined[..], b"abcdef");
        assert_eq!(budget.available_permits(), 1 << 20, "small bodies are free");
    }

    /// `n` chunks of `size` bytes, one every `every`.
    fn trickle(n: usize, size: usize, every: Duration) -> Body {
        Body::from_stream(futures::stream::unfold(0, move |i| async move {
            if i == n {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; size])),
                i + 1,
            ))
        }))
    }

    #[tokio::test]
    async fn bodies_slower_than_the_floor_are_cut_off() {
        let budget = Arc::new(Semaphore::new(MAX_BODY));
        let ms = Duration::from_millis;
        // 100 bytes every 100 ms: within the grace, then far below the floor.
        let started = tokio::time::Instant::now();
        assert!(matches!(
            read_body(trickle(1000, 100, ms(100)), None, MAX_BODY, &budget).await,
            Err(BodyError::TooSlow)
        ));
        let took = started.elapsed();
        assert!(
            took >= BODY_RATE_GRACE && took < BODY_RATE_GRACE + ms(300),
            "{took:?}"
        );
        // A pause within the grace is fine; so is a larger body at the floor's pace.
        assert!(
            read_body(trickle(1, 100, ms(900)), None, MAX_BODY, &budget)
                .await
                .is_ok()
        );
        let at_the_floor = trickle(2, MIN_BODY_RATE, ms(950));
        let (body, _held) = read_body(at_the_floor, None, MAX_BODY, &budget)
            .await
            .unwrap();
        assert_eq!(body.len(), 2 * MIN_BODY_RATE);
    }

    fn chunks(n: usize, size: usize) -> Body {
        Body::from_stream(futures::stream::iter(
            (0..n).map(move |_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; size]))),
        ))
    }

    #[tokio::test]
    async fn large_bodies_draw_on_the_shared_budget_and_give_it_back() {
        let budget = Arc::new(Semaphore::new(FREE_BODY_BYTES * 4));
        let size = FREE_BODY_BYTES * 3;
        let (body, held) = read_body(
            chunks(3, FREE_BODY_BYTES),
            Some(size as u64),
            MAX_BODY,
            &budget,
        )
        .await
        .unwrap();
        assert_eq!(body.len(), size);
        let taken = held.as_ref().map_or(0, |p| p.num_permits());
        assert!(taken >= size - FREE_BODY_BYTES, "{taken}");
        assert_eq!(budget.available_permits(), FREE_BODY_BYTES * 4 - taken);
        // A second one does not fit beside it: refused at once, holding nothing.
        assert!(matches!(
            read_body(
                chunks(6, FREE_BODY_BYTES),
                Some(6 * FREE_BODY_BYTES as u64),
                MAX_BODY,
                &budget
            )
            .await,
            Err(BodyError::OverBudget)
        ));
        assert_eq!(budget.available_permits(), FREE_BODY_BYTES * 4 - taken);
        drop((body, held));
        assert_eq!(budget.available_permits(), FREE_BODY_BYTES * 4);
        // Without a length, growth doubles and is charged as it goes.
        let (body, held) = read_body(chunks(8, FREE_BODY_BYTES / 2), None, MAX_BODY, &budget)
            .await
            .unwrap();
        assert_eq!(body.len(), 4 * FREE_BODY_BYTES);
        assert!(held.is_some());
    }
}
