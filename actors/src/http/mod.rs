//! Local operations endpoint: `/healthz`, `/readyz`, `/status`, `/metrics` (and `POST /faults`
//! in fault-injection builds).
//!
//! Design constraints: a supervised actor owns the listener (bound in `pre_start`, so a taken
//! port fails the stage visibly and is retried by policy) and the server task (aborted in
//! `post_stop`). Handlers only read shared state; none touches the data path.
//!
//! With `http.token_file` set, `/status`, `/metrics` and `/faults` answer only a request
//! carrying `Authorization: Bearer <token>` (401 otherwise, compared in constant time, the
//! token read from its file at start and never logged); `/healthz` and `/readyz` stay open
//! for probes. `http.bind` beyond loopback requires the token (see [`crate::config::HttpConfig`]).

use crate::ctx::Ctx;
use crate::fault::{FaultRequest, Faults};
use crate::feedback::FeedbackShared;
use crate::status::now_ms;
use axum::extract::FromRef;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::task::JoinHandle;

/// Stages that must run for `/readyz` to answer 200.
pub const READY_STAGES: &[&str] = &["ingest", "sensors", "inference", "uplink"];

/// Messages of the HTTP actor.
#[derive(Debug)]
pub enum HttpMsg {
    /// The server task ended; the actor fails so its supervisor restarts it.
    Exited(String),
}

/// The HTTP actor.
pub struct HttpActor;

/// State built in `pre_start`.
pub struct HttpState {
    task: JoinHandle<()>,
    /// The address actually bound (differs from config when it asked for port 0).
    pub local: SocketAddr,
}

impl Actor for HttpActor {
    type Msg = HttpMsg;
    type State = HttpState;
    type Arguments = (Arc<Ctx>, Arc<FeedbackShared>);

    async fn pre_start(
        &self,
        myself: ActorRef<HttpMsg>,
        (ctx, feedback): (Arc<Ctx>, Arc<FeedbackShared>),
    ) -> Result<HttpState, ActorProcessingErr> {
        let bind = ctx.cfg.http.bind;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| format!("cannot bind http.bind {bind}: {e}"))?;
        let local = listener.local_addr()?;
        let token = ctx.cfg.http.token()?.map(Arc::from);
        let app = router(Api {
            ctx,
            feedback,
            token,
        });
        let task = tokio::spawn(async move {
            let r = axum::serve(listener, app).await;
            let _ = myself.cast(HttpMsg::Exited(format!("{r:?}")));
        });
        Ok(HttpState { task, local })
    }

    async fn post_stop(
        &self,
        _: ActorRef<HttpMsg>,
        st: &mut HttpState,
    ) -> Result<(), ActorProcessingErr> {
        st.task.abort();
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<HttpMsg>,
        msg: HttpMsg,
        _: &mut HttpState,
    ) -> Result<(), ActorProcessingErr> {
        let HttpMsg::Exited(why) = msg;
        Err(format!("http server exited: {why}").into())
    }
}

/// What the handlers read: the shared services, and the feedback state shown in `/status`.
#[derive(Clone)]
pub struct Api {
    /// The shared services.
    pub ctx: Arc<Ctx>,
    /// Feedback limits and overrides.
    pub feedback: Arc<FeedbackShared>,
    /// The bearer token `/status`, `/metrics` and `/faults` require, if any.
    pub token: Option<Arc<str>>,
}

impl FromRef<Api> for Arc<Ctx> {
    fn from_ref(api: &Api) -> Self {
        api.ctx.clone()
    }
}

/// The routes.
pub fn router(api: Api) -> Router {
    let guarded = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/faults", post(faults))
        .route_layer(middleware::from_fn_with_state(api.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(guarded)
        .with_state(api)
}

/// Lets the request through when no token is configured or it carries the token.
async fn require_token(State(api): State<Api>, req: Request, next: Next) -> Response {
    match &api.token {
        Some(token) if !bearer_matches(req.headers(), token) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required (http.token_file)\n",
        )
            .into_response(),
        _ => next.run(req).await,
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.trim().as_bytes().ct_eq(token.as_bytes()).into()
}

async fn readyz(State(ctx): State<Arc<Ctx>>) -> Response {
    if !ctx.status.all_running(READY_STAGES) {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    } else if ctx.store.get().is_none() {
        // Deciding, but nothing can be committed: not ready to be relied on.
        (StatusCode::SERVICE_UNAVAILABLE, "store closed\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics(State(ctx): State<Arc<Ctx>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
        .into_response()
}

async fn status(State(api): State<Api>) -> Json<Value> {
    Json(status_json(&api.ctx, &api.feedback))
}

/// The `/status` document.
pub fn status_json(ctx: &Ctx, feedback: &FeedbackShared) -> Value {
    let (mode, since, reasons) = ctx.status.mode();
    let m = &ctx.metrics;
    let store = match ctx.store.get().map(|s| s.report()) {
        Some(r) => json!({
            "kind": "sled",
            "state": "open",
            "path": r.path,
            "backlog": {"alert": r.backlog[0].1.count, "summary": r.backlog[1].1.count, "raw": r.backlog[2].1.count},
            "backlog_bytes": r.logical_bytes,
            "bytes": r.disk_bytes,
            "max_bytes": r.max_bytes,
            "amplification": r.amplification,
            "next_seq": r.next_seq,
            "evicted": {"alert": r.evicted[0].1, "summary": r.evicted[1].1, "raw": r.evicted[2].1},
            "drain_per_second": m.store_drain_per_second.get(),
            "raw_windows": r.raw_windows,
            "dead_letters": r.dead_letters,
        }),
        None => {
            let c = ctx.store.closed_reason();
            json!({
                "kind": "sled",
                "state": "closed",
                "path": ctx.cfg.store.path.display().to_string(),
                "closed_since": c.as_ref().map(|c| c.since),
                "reason": c.map(|c| c.reason),
                "next_seq": ctx.store.next_seq(),
                "max_bytes": ctx.cfg.store.max_bytes,
            })
        }
    };
    let scorer = ctx.scorer();
    json!({
        "gateway": ctx.cfg.gateway.id,
        "version": env!("CARGO_PKG_VERSION"),
        "now": now_ms(),
        "epoch": ctx.store.epoch(),
        "mode": {"state": mode.as_str(), "since": since, "reasons": reasons},
        "figures": ctx.rates.figures(),
        "stages": ctx.status.stages(),
        "store": store,
        "model": {
            "name": scorer.name(),
            "version": scorer.version(),
            "fallback": scorer.is_fallback(),
            "threshold": scorer.threshold(),
        },
        "sensors_active": m.sensors_active.get(),
        "uplink_connected": m.uplink_connected.get() == 1,
        "dead_letters": {"held": ctx.store.get().map(|s| s.dead.len()), "recent": ctx.dead_letters.recent(10)},
        "feedback": feedback.status(),
        "faults_enabled": Faults::enabled(),
    })
}

async fn faults(State(ctx): State<Arc<Ctx>>, Json(req): Json<FaultRequest>) -> Response {
    match ctx.faults.arm(&req) {
        Ok(()) => (StatusCode::OK, "armed\n").into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}
