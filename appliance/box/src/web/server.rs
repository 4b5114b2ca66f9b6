//! The listeners: HTTPS (TLS, HTTP/1.1, upgrades for the video WebSockets), the plain-HTTP
//! redirect, the embedded static assets and the security headers every answer carries.

use super::*;

/// Serves the HTTPS listener until it fails. HTTP/1.1 only: WebSockets over HTTP/2 need
/// extended CONNECT, which Safari and Chrome handle differently; one protocol keeps every
/// tablet on the same path.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        info!(%peer, "HTTPS handshake failed: {e}");
                        return;
                    }
                    Err(_) => return,
                };
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    let app = app.clone();
                    async move {
                        use tower::ServiceExt;
                        app.oneshot(req.map(Body::new)).await
                    }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(15))
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                info!(%peer, "HTTPS connection ended: {e}");
            }
        });
    }
}

/// Plain HTTP: every request gets a permanent redirect to the same path over HTTPS, and
/// nothing else (no page, no API) is ever served without TLS.
pub async fn serve_redirect(listener: TcpListener, https_port: u16) -> std::io::Result<()> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        tokio::spawn(async move {
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
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc);
            if let Err(e) = conn.await {
                info!(%peer, "HTTP redirect connection ended: {e}");
            }
        });
    }
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
