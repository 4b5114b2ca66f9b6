//! The listeners: HTTPS (TLS, HTTP/1.1, upgrades for the video WebSockets), the plain-HTTP
//! redirect, the embedded static assets and the security headers every answer carries.

use super::*;

/// Serves the HTTPS listener for ever, within `limits` (see [`crate::listener`]: who is
/// admitted, evicted or cut, and when). HTTP/1.1 only: WebSockets over HTTP/2 need extended
/// CONNECT, which Safari and Chrome handle differently; one protocol keeps every tablet on the
/// same path.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: crate::listener::HttpLimits,
) -> std::convert::Infallible {
    let acceptor = TlsAcceptor::from(tls);
    let t = limits.timeouts;
    crate::listener::run(
        listener,
        "HTTPS",
        limits.connections,
        move |tcp, peer, admission| {
            let acceptor = acceptor.clone();
            let app = app.clone();
            async move {
                let conn = admission.handle();
                let handshake = tokio::time::timeout(t.tls_handshake, acceptor.accept(tcp));
                let tls = tokio::select! {
                    r = handshake => match r {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            if admission.log_budget().allows() {
                                info!(%peer, "HTTPS handshake failed: {e}");
                            }
                            return;
                        }
                        Err(_) => return,
                    },
                    _ = conn.cut_off() => return,
                };
                let log = admission.log_budget();
                let io = admission.guard(tls, t.write_stall);
                let svc_conn = conn.clone();
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (mut parts, body) = req.into_parts();
                        parts.extensions.insert(ConnectInfo(peer));
                        // Counted from the end of the head: a body trickled a byte at a time
                        // is cut at the deadline, with its connection.
                        let body = crate::listener::DeadlineBody::new(
                            body,
                            t.request_body,
                            svc_conn.clone(),
                        );
                        let req = Request::from_parts(parts, Body::new(body));
                        let app = app.clone();
                        let conn = svc_conn.clone();
                        async move {
                            use tower::ServiceExt;
                            let res = app.oneshot(req).await;
                            // The router upgrades only behind a session (every WebSocket route
                            // is in ROUTES, behind a session): such a connection is trusted, never
                            // evicted for an anonymous one.
                            if matches!(&res, Ok(r) if r.status() == StatusCode::SWITCHING_PROTOCOLS)
                            {
                                conn.trust();
                            }
                            res
                        }
                    },
                );
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(t.request_head)
                    .max_buf_size(crate::listener::MAX_REQUEST_HEAD)
                    .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
                    .with_upgrades();
                tokio::select! {
                    r = served => {
                        if let Err(e) = r {
                            if log.allows() {
                                info!(%peer, "HTTPS connection ended: {e}");
                            }
                        }
                    }
                    _ = conn.cut_off() => {}
                }
            }
        },
    )
    .await
}

/// Plain HTTP: every request gets a permanent redirect to the same path over HTTPS, and
/// nothing else (no page, no API) is ever served without TLS. Within `limits` like HTTPS.
pub async fn serve_redirect(
    listener: TcpListener,
    https_port: u16,
    limits: crate::listener::HttpLimits,
) -> std::convert::Infallible {
    let t = limits.timeouts;
    crate::listener::run(
        listener,
        "HTTP redirect",
        limits.connections,
        move |tcp, peer, admission| async move {
            let conn = admission.handle();
            let log = admission.log_budget();
            let svc = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| async move {
                    let host = req
                        .headers()
                        .get(header::HOST)
                        .and_then(|v| v.to_str().ok())
                        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_string())
                        .filter(|h| {
                            !h.is_empty()
                                && h.len() <= 255
                                && h.chars()
                                    .all(|c| c.is_ascii_alphanumeric() || "-.[]".contains(c))
                        });
                    let res = match host {
                        Some(host) => {
                            let path = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str())
                                .unwrap_or("/");
                            let port = if https_port == 443 {
                                String::new()
                            } else {
                                format!(":{https_port}")
                            };
                            hyper::Response::builder()
                                .status(StatusCode::PERMANENT_REDIRECT)
                                .header(header::LOCATION, format!("https://{host}{port}{path}"))
                                .body(Body::empty())
                        }
                        None => hyper::Response::builder()
                            .status(StatusCode::BAD_REQUEST)
                            .body(Body::from("a Host header is required")),
                    };
                    Ok::<_, std::convert::Infallible>(res.expect("static response parts"))
                },
            );
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(t.request_head)
                .max_buf_size(crate::listener::MAX_REQUEST_HEAD)
                .serve_connection(
                    hyper_util::rt::TokioIo::new(admission.guard(tcp, t.write_stall)),
                    svc,
                );
            tokio::select! {
                r = served => {
                    if let Err(e) = r {
                        if log.allows() {
                            info!(%peer, "HTTP redirect connection ended: {e}");
                        }
                    }
                }
                _ = conn.cut_off() => {}
            }
        },
    )
    .await
}

pub(super) fn asset(path: &str) -> Response {
    let Some(file) = WEB_UI.get_file(path) else {
        return ApiError::NotFound(format!("no asset {path}")).into_response();
    };
    let mime = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Bytes::from_static(file.contents()),
    )
        .into_response()
}

pub(super) async fn security_headers(req: Request, next: Next) -> Response {
    // Safari before 17 does not let 'self' cover wss:, so the WebSocket origin is named.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .map(str::to_string);
    let mut res = next.run(req).await;
    let connect = match host {
        Some(h) => format!("'self' wss://{h}"),
        None => "'self'".to_string(),
    };
    let csp = format!(
        "default-src 'self'; img-src 'self' data:; connect-src {connect}; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    );
    let h = res.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    // A handler may set a stricter policy of its own (the printable notice).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}
