//! Station link scenarios against a real box process: who gets past the TLS handshake, and
//! what happens to a station that sends garbage while others stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use lanterne_media::CaptureSource;
use lanterne_scenarios::{next_item, BoxProcess, WsItem};
use lanterne_station::identity::{Identity, BOX_SERVER_NAME};
use lanterne_station::{spawn_station, SourceSpec};
use lanterne_wire::{Capabilities, Control, Frame, FrameCodec, PROTOCOL_VERSION};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls_connect(
    addr: std::net::SocketAddr,
    cfg: rustls::ClientConfig,
) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(BOX_SERVER_NAME).unwrap(), tcp)
        .await
}

/// After the handshake, a peer the box does not accept must not get a Welcome: the
/// connection ends (TLS alert or close) instead.
async fn assert_refused(stream: std::io::Result<Tls>) {
    let Ok(stream) = stream else { return }; // refused during the handshake itself
    let mut framed = Framed::new(stream, FrameCodec);
    let _ = framed
        .send(Frame::Control(Control::Hello {
            protocol: PROTOCOL_VERSION,
            agent_version: "test".into(),
            hostname: "intruder".into(),
            capabilities: Capabilities::default(),
        }))
        .await;
    match tokio::time::timeout(Duration::from_secs(10), framed.next()).await {
        Ok(None) | Ok(Some(Err(_))) => {}
        Ok(Some(Ok(f))) => panic!("an unaccepted peer got an answer: {f:?}"),
        Err(_) => panic!("the box kept an unaccepted peer's connection open"),
    }
}

fn box_ca_roots(b: &BoxProcess) -> rustls::RootCertStore {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(&b.ready.station_ca_cert).unwrap())
        .unwrap();
    roots
}

fn client_cfg(
    roots: rustls::RootCertStore,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
}

/// A client certificate for `key`, issued by the CA whose key and certificate are given.
fn issue_client_cert(
    ca_cert_pem: &str,
    ca_key: rcgen::KeyPair,
    key: &rcgen::KeyPair,
) -> rustls::pki_types::CertificateDer<'static> {
    let issuer = rcgen::Issuer::from_ca_cert_pem(ca_cert_pem, ca_key).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    p.signed_by(key, &issuer).unwrap().der().clone()
}

fn key_der(key: &rcgen::KeyPair) -> rustls::pki_types::PrivateKeyDer<'static> {
    rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into())
}

#[tokio::test]
async fn peers_without_an_enrolled_certificate_are_refused() {
    let b = BoxProcess::start().await.unwrap();
    let addr = b.ready.station_link;

    // 1. No client certificate at all.
    let cfg = client_cfg(box_ca_roots(&b)).with_no_client_auth();
    assert_refused(tls_connect(addr, cfg).await).await;

    // 2. A certificate from another CA.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut other_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = other_params.self_signed(&other_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = issue_client_cert(&other_ca.pem(), other_key, &key);
    let cfg = client_cfg(box_ca_roots(&b))
        .with_client_auth_cert(vec![cert], key_der(&key))
        .unwrap();
    assert_refused(tls_connect(addr, cfg).await).await;

    // 2b. A certificate signed by the box's HTTPS CA (the one tablets trust): that CA has no
    //     say on the station link.
    let https_ca_key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(b.box_dir().join("https-ca.key.pem")).unwrap(),
    )
    .unwrap();
    let https_ca_pem = std::fs::read_to_string(&b.ready.ca_cert).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = issue_client_cert(&https_ca_pem, https_ca_key, &key);
    let cfg = client_cfg(box_ca_roots(&b))
        .with_client_auth_cert(vec![cert], key_der(&key))
        .unwrap();
    assert_refused(tls_connect(addr, cfg).await).await;

    // 3. A certificate genuinely signed by the station CA but never enrolled (not in the
    //    database): the CA signature alone is not enough.
    let ca_key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(b.box_dir().join("station-ca.key.pem")).unwrap(),
    )
    .unwrap();
    let ca_pem = std::fs::read_to_string(&b.ready.station_ca_cert).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = issue_client_cert(&ca_pem, ca_key, &key);
    let cfg = client_cfg(box_ca_roots(&b))
        .with_client_auth_cert(vec![cert], key_der(&key))
        .unwrap();
    assert_refused(tls_connect(addr, cfg).await).await;
    b.wait_log_line(
        &["station link refused", "not an enrolled station"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();

    // 4. Not TLS at all.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("the box must not hang on a plain-text peer")
        .unwrap_or(0);
    assert!(
        !String::from_utf8_lossy(&buf[..n]).contains("HTTP"),
        "no HTTP answer expected"
    );
    b.wait_log_line(
        &["station link refused", "TLS handshake failed"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
}

/// Connects as an enrolled station, says hello and gets the welcome.
async fn raw_station(dir: &std::path::Path) -> Framed<Tls, FrameCodec> {
    let id = Identity::load(dir).unwrap();
    let addr: std::net::SocketAddr = id.enrolment.link.parse().unwrap();
    let cfg = (*id.link_tls().unwrap()).clone();
    let mut framed = Framed::new(tls_connect(addr, cfg).await.unwrap(), FrameCodec);
    framed
        .send(Frame::Control(Control::Hello {
            protocol: PROTOCOL_VERSION,
            agent_version: "test".into(),
            hostname: "raw".into(),
            capabilities: Capabilities::default(),
        }))
        .await
        .unwrap();
    match framed.next().await {
        Some(Ok(Frame::Control(Control::Welcome { .. }))) => framed,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

/// Waits until the connection is closed by the box.
async fn assert_disconnected(framed: Framed<Tls, FrameCodec>) {
    let mut stream = framed.into_inner();
    let mut buf = vec![0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!("the box did not disconnect the misbehaving station"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            // Control frames (set-stream, heartbeats) may still be in flight; keep reading.
            Ok(Ok(_)) => continue,
        }
    }
}

/// Counts mosaic updates for `tile` over `window`.
async fn tile_updates(ws: &mut lanterne_scenarios::Ws, tile: u16, window: Duration) -> usize {
    let deadline = Instant::now() + window;
    let mut n = 0;
    while Instant::now() < deadline {
        match next_item(ws, Duration::from_secs(5)).await.unwrap() {
            WsItem::Video(v) => n += v.updates.iter().filter(|u| u.0 == tile).count(),
            WsItem::Json(_) => {}
        }
    }
    n
}

#[tokio::test]
async fn malformed_or_oversized_frames_disconnect_only_that_station() {
    let b = BoxProcess::start().await.unwrap();
    let probe = lanterne_media::init().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let good_dir = dirs.path().join("good");
    let good = b.enrol(&good_dir, "poste-bon").await.unwrap();
    b.enrol(&dirs.path().join("garbage"), "poste-garbage")
        .await
        .unwrap();
    b.enrol(&dirs.path().join("huge"), "poste-huge")
        .await
        .unwrap();
    let station = spawn_station(
        &good_dir,
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste-bon".into(),
            rgb: [40, 160, 60],
        }),
        std::sync::Arc::new(lanterne_station::screen::SimulatedScreen::default()),
        std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
        &probe,
        "poste-bon".into(),
    )
    .unwrap();

    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let mut ws = https.websocket("/api/mosaic", &cookie).await.unwrap();
    let tile = loop {
        if let WsItem::Json(j) = next_item(&mut ws, Duration::from_secs(10)).await.unwrap() {
            if j["type"] == "layout" {
                let t = j["tiles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["station_id"] == good.station_id)
                    .map(|t| t["index"].as_u64().unwrap() as u16);
                if let Some(t) = t {
                    break t;
                }
            }
        }
    };
    assert!(
        tile_updates(&mut ws, tile, Duration::from_secs(4)).await > 0,
        "the good station streams before the attack"
    );

    // Unknown frame kind.
    let mut garbage = raw_station(&dirs.path().join("garbage")).await;
    garbage
        .get_mut()
        .write_all(&[0x07, 0, 0, 0, 1, 0xff])
        .await
        .unwrap();
    garbage.get_mut().flush().await.unwrap();
    assert_disconnected(garbage).await;
    b.wait_log_line(
        &["poste-garbage", "unknown frame kind 7"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();

    // A media frame announcing 5 MiB: refused from its header, before any buffering.
    let mut huge = raw_station(&dirs.path().join("huge")).await;
    let mut hdr = BytesMut::new();
    hdr.put_u8(2);
    hdr.put_u32(5 * 1024 * 1024);
    hdr.put_slice(&[0u8; 64]);
    huge.get_mut().write_all(&hdr).await.unwrap();
    huge.get_mut().flush().await.unwrap();
    assert_disconnected(huge).await;
    b.wait_log_line(
        &["poste-huge", "exceeds the limit"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();

    // The good station never noticed.
    assert!(
        tile_updates(&mut ws, tile, Duration::from_secs(3)).await > 0,
        "the good station keeps streaming after the others were thrown out"
    );
    assert!(station.status.borrow().connected);
    assert!(
        !b.log()
            .lines()
            .any(|l| l.contains("poste-bon") && l.contains("station disconnected")),
        "the good station was never disconnected"
    );
}
