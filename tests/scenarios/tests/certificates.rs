//! The box's certificate authorities against real processes: tablets trust only the HTTPS
//! CA (or the school's certificate), stations pin only the station CA, and a station enrols
//! and connects whichever certificate serves HTTPS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanterne_media::CaptureSource;
use lanterne_scenarios::{BoxProcess, Https};
use lanterne_station::screen::SimulatedScreen;
use lanterne_station::{spawn_station, RunningStation, SourceSpec};

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start_station(dir: &std::path::Path, probe: &lanterne_media::CodecProbe) -> RunningStation {
    spawn_station(
        dir,
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste".into(),
            rgb: [40, 70, 200],
        }),
        Arc::new(SimulatedScreen::default()),
        Arc::new(lanterne_station::system::SimulatedSystem::default()),
        probe,
        "poste".into(),
    )
    .unwrap()
}

/// A school PKI: its root and a server certificate for the loopback address, as files.
fn school_pki(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let root_key = rcgen::KeyPair::generate().unwrap();
    let mut root = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    root.distinguished_name
        .push(rcgen::DnType::CommonName, "PKI du lycée");
    let root_cert = root.self_signed(&root_key).unwrap();
    let issuer = rcgen::Issuer::new(root, root_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (root_path, cert_path, key_path) = (
        dir.join("school-root.pem"),
        dir.join("school-cert.pem"),
        dir.join("school-key.pem"),
    );
    std::fs::write(&root_path, root_cert.pem()).unwrap();
    std::fs::write(&cert_path, format!("{}{}", leaf.pem(), root_cert.pem())).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (root_path, cert_path, key_path)
}

/// Before the split, enrolment pinned the CA inside the HTTPS chain, so a box serving the
/// school's certificate could not enrol stations at all. Now the station asks for the
/// reserved enrolment name and gets the station link's certificate.
#[tokio::test]
async fn stations_enrol_and_connect_while_the_school_certificate_serves_https() {
    let pki = tempfile::tempdir().unwrap();
    let (root, cert, key) = school_pki(pki.path());
    let b = BoxProcess::start_with_config(&format!(
        "[room]\nname = \"Salle 12\"\n[network]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    ))
    .await
    .unwrap();

    // A tablet that trusts the school's root reaches the box…
    let tablet = Https::new(&b.ready.https_url, &root).unwrap();
    let res = tablet.request("GET", "/login", None, &[]).await.unwrap();
    assert_eq!(res.status, 200);
    // …while the box's own CAs are not what it serves to tablets.
    for ca in [&b.ready.ca_cert, &b.ready.station_ca_cert] {
        let other = Https::new(&b.ready.https_url, ca).unwrap();
        assert!(other.request("GET", "/login", None, &[]).await.is_err());
    }

    // The station pins the station CA, enrols and connects.
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("poste");
    let token = b.enrol_tokens(1).unwrap().remove(0);
    assert_eq!(token.ca_fingerprint, b.ready.station_ca_fingerprint);
    lanterne_station::enrol::enrol(&dir, &b.ready.https_url, &token, "poste", None)
        .await
        .unwrap();
    let probe = lanterne_media::init().unwrap();
    let station = start_station(&dir, &probe);
    wait_until("the station connected", Duration::from_secs(30), || {
        station.status.borrow().connected
    })
    .await;
    station.shutdown().await;
}

/// A token whose fingerprint is the HTTPS CA's (what a tablet trusts) is useless for
/// enrolment: the code is never sent, because the box proves itself with the station CA.
#[tokio::test]
async fn the_enrolment_code_is_only_sent_to_the_pinned_station_ca() {
    let b = BoxProcess::start().await.unwrap();
    assert_ne!(b.ready.ca_fingerprint, b.ready.station_ca_fingerprint);
    let mut token = b.enrol_tokens(1).unwrap().remove(0);
    let code = token.code.clone();
    token.ca_fingerprint = b.ready.ca_fingerprint.clone();
    let dirs = tempfile::tempdir().unwrap();
    let err = lanterne_station::enrol::enrol(
        &dirs.path().join("a"),
        &b.ready.https_url,
        &token,
        "poste",
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, lanterne_station::enrol::EnrolError::Tls(_)),
        "{err}"
    );
    // The code was not spent: with the right pin it still works.
    token.ca_fingerprint = b.ready.station_ca_fingerprint.clone();
    assert_eq!(token.code, code);
    lanterne_station::enrol::enrol(
        &dirs.path().join("b"),
        &b.ready.https_url,
        &token,
        "poste",
        None,
    )
    .await
    .unwrap();
}

/// A box made before the split has one CA, `ca.*.pem`, which its stations pinned. After the
/// upgrade it is the station CA (same fingerprint): the enrolled station reconnects as it
/// was, and tablets get a new, name-constrained HTTPS CA.
#[tokio::test]
async fn an_upgraded_box_keeps_its_stations_and_gets_a_new_https_ca() {
    let b = BoxProcess::start().await.unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("poste");
    b.enrol(&dir, "poste").await.unwrap();
    let pinned = b.ready.station_ca_fingerprint.clone();
    let data = b.stop();
    // Put the data directory back the way earlier versions left it.
    let box_dir = data.path().join("box");
    for f in ["key", "cert"] {
        std::fs::rename(
            box_dir.join(format!("station-ca.{f}.pem")),
            box_dir.join(format!("ca.{f}.pem")),
        )
        .unwrap();
        std::fs::remove_file(box_dir.join(format!("https-ca.{f}.pem"))).unwrap();
    }

    let b = BoxProcess::start_in(data).await.unwrap();
    assert_eq!(b.ready.station_ca_fingerprint, pinned);
    assert!(!b.box_dir().join("ca.cert.pem").exists());
    assert_ne!(b.ready.ca_fingerprint, pinned);
    b.wait_log_line(&["former single CA", "remove it"], Duration::from_secs(5))
        .await
        .unwrap();
    let probe = lanterne_media::init().unwrap();
    let station = start_station(&dir, &probe);
    wait_until("the station reconnected", Duration::from_secs(30), || {
        station.status.borrow().connected
    })
    .await;
    station.shutdown().await;
    // The tablet's CA serves the box's pages.
    let res = b
        .https()
        .unwrap()
        .request("GET", "/login", None, &[])
        .await
        .unwrap();
    assert_eq!(res.status, 200);
}

fn room_config(certificate_days: u32) -> String {
    format!("[room]\nname = \"Salle 12\"\n[stations]\ncertificate_days = {certificate_days}\n")
}

/// Restarts the box with a new station certificate lifetime, on the same ports and data.
async fn restart_with(b: BoxProcess, certificate_days: u32) -> BoxProcess {
    std::fs::write(
        b.dir.path().join("lanterne.toml"),
        room_config(certificate_days),
    )
    .unwrap();
    BoxProcess::start_in(b.stop()).await.unwrap()
}

/// Days until the station's stored certificate expires.
fn days_left(dir: &std::path::Path) -> i64 {
    use rustls::pki_types::pem::PemObject;
    let der =
        rustls::pki_types::CertificateDer::from_pem_file(dir.join("station.cert.pem")).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (cert.validity().not_after.timestamp() - now + 43_200) / 86_400
}

/// Opens a link with the identity in `dir` and says hello: the box's first answer.
async fn hello(dir: &std::path::Path) -> Framed {
    use futures_util::SinkExt;
    let id = lanterne_station::identity::Identity::load(dir).unwrap();
    let tcp = tokio::net::TcpStream::connect(&id.enrolment.link)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(lanterne_wire::LINK_SERVER_NAME).unwrap();
    let tls = tokio_rustls::TlsConnector::from(id.link_tls().unwrap())
        .connect(name, tcp)
        .await
        .unwrap();
    let mut framed = tokio_util::codec::Framed::new(tls, lanterne_wire::FrameCodec);
    framed
        .send(lanterne_wire::Frame::Control(
            lanterne_wire::Control::Hello {
                protocol: lanterne_wire::PROTOCOL_VERSION,
                agent_version: "test".into(),
                hostname: "raw".into(),
                capabilities: Default::default(),
            },
        ))
        .await
        .unwrap();
    framed
}

type Framed = tokio_util::codec::Framed<
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    lanterne_wire::FrameCodec,
>;

/// Reads until the box closes the link; true if it did within 10 s. Control frames it sends
/// meanwhile (welcome, stream settings, heartbeats) are skipped, a frame matching `forbidden`
/// fails the test.
async fn closed_by_box(
    framed: &mut Framed,
    forbidden: impl Fn(&lanterne_wire::Control) -> bool,
) -> bool {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, framed.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(lanterne_wire::Frame::Control(c)))) => {
                assert!(!forbidden(&c), "unexpected {c:?}");
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The box renews station certificates over the link: once half of the configured lifetime
/// has passed (here: a 30-day certificate when the box is set to 100 days), and at once when a
/// certificate outlives the configured lifetime (100 days left when the box is set to 30). The
/// station stores the new key and certificate and connects with them next time; from then on
/// the old certificate is refused.
#[tokio::test]
async fn station_certificates_are_renewed_over_the_link_and_used_at_the_next_connection() {
    let b = BoxProcess::start_with_config(&room_config(30))
        .await
        .unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("poste");
    b.enrol(&dir, "poste").await.unwrap();
    assert_eq!(days_left(&dir), 30);
    // Keep the enrolled identity to try it again later.
    let old = dirs.path().join("old");
    std::fs::create_dir(&old).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), old.join(f.file_name())).unwrap();
    }
    let old_key = std::fs::read_to_string(dir.join("station.key.pem")).unwrap();

    let probe = lanterne_media::init().unwrap();
    let station = start_station(&dir, &probe);
    wait_until("the station connected", Duration::from_secs(30), || {
        station.status.borrow().connected
    })
    .await;

    // A third of the way into a 100-day lifetime: half of it has passed.
    let b = restart_with(b, 100).await;
    wait_until("the first renewal", Duration::from_secs(30), || {
        station.status.borrow().certificate_renewals == 1
    })
    .await;
    assert_eq!(days_left(&dir), 100);
    assert_ne!(
        std::fs::read_to_string(dir.join("station.key.pem")).unwrap(),
        old_key,
        "a renewal brings a new key"
    );
    b.wait_log_line(
        &["renewed the station's certificate", "days=100"],
        Duration::from_secs(5),
    )
    .await
    .unwrap();

    // The next connection uses the new certificate; the old one is refused from then on.
    let log_before = b.log().len();
    let b = restart_with(b, 100).await;
    wait_until("the station came back", Duration::from_secs(60), || {
        b.log()[log_before..].contains("station online") && station.status.borrow().connected
    })
    .await;
    let mut with_old = hello(&old).await;
    assert!(
        closed_by_box(&mut with_old, |c| matches!(
            c,
            lanterne_wire::Control::Welcome { .. }
        ))
        .await,
        "the old certificate still works"
    );
    b.wait_log_line(&["not an enrolled station"], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(station.status.borrow().certificate_renewals, 1);

    // The lifetime is shortened: the 100-day certificate is renewed at once, for 30 days.
    let b = restart_with(b, 30).await;
    wait_until("the second renewal", Duration::from_secs(60), || {
        station.status.borrow().certificate_renewals == 2
    })
    .await;
    assert_eq!(days_left(&dir), 30);
    b.wait_log_line(
        &["renewed the station's certificate", "days=30"],
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    station.shutdown().await;
}

/// A station may send a certificate request only after the box offered a renewal; a fresh
/// certificate is not offered one, and the box closes a link that asks anyway.
#[tokio::test]
async fn a_certificate_request_the_box_did_not_ask_for_closes_the_link() {
    use futures_util::SinkExt;
    let b = BoxProcess::start().await.unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("poste");
    b.enrol(&dir, "poste").await.unwrap();
    let id = lanterne_station::identity::Identity::load(&dir).unwrap();
    let csr_pem = id.renewal_request().unwrap().csr_pem;
    let mut framed = hello(&dir).await;
    framed
        .send(lanterne_wire::Frame::Control(
            lanterne_wire::Control::CertificateRequest { csr_pem },
        ))
        .await
        .unwrap();
    assert!(
        closed_by_box(&mut framed, |c| matches!(
            c,
            lanterne_wire::Control::CertificateIssued { .. }
                | lanterne_wire::Control::RenewCertificate
        ))
        .await,
        "the box kept the link open"
    );
    b.wait_log_line(&["did not ask for"], Duration::from_secs(10))
        .await
        .unwrap();
}
