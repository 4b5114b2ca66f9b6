//! Enrolment: the station makes its key pair, sends a CSR with a one-time code to the box
//! over HTTPS (pinning the box's station CA from the token), and saves the certificate it
//! gets back.
//!
//! The code goes only over a connection verified against the pinned CA: the station asks for
//! the reserved server name [`lanterne_wire::ENROL_SERVER_NAME`], for which the box presents
//! its station-link certificate rather than the one tablets see (which may come from the
//! box's name-constrained HTTPS CA or from the school), and [`PinnedCaVerifier`] accepts
//! nothing else.
//!
//! Token format, as printed by `lanterne-box enrol-codes`: `CODE@CA-SHA256-HEX`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::identity::{Enrolment, Identity, IdentityError, PinnedCaVerifier};

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("the enrolment token must look like CODE@FINGERPRINT (64 hex digits after '@')")]
    BadToken,
    #[error("the box URL must look like https://host:port, got '{0}'")]
    BadUrl(String),
    #[error("cannot reach the box at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with the box failed (is the token's fingerprint the box's?): {0}")]
    Tls(std::io::Error),
    #[error("HTTP error talking to the box: {0}")]
    Http(String),
    #[error("the box refused the enrolment ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the box sent an answer that makes no sense: {0}")]
    BadAnswer(String),
    #[error("cannot create the station key: {0}")]
    Key(#[from] rcgen::Error),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("timed out talking to the box")]
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub code: String,
    pub ca_fingerprint: String,
}

impl std::str::FromStr for Token {
    type Err = EnrolError;
    fn from_str(s: &str) -> Result<Self, EnrolError> {
        let (code, fp) = s.trim().split_once('@').ok_or(EnrolError::BadToken)?;
        if code.is_empty()
            || code.len() > 64
            || fp.len() != 64
            || !fp.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(EnrolError::BadToken);
        }
        Ok(Token {
            code: code.to_string(),
            ca_fingerprint: fp.to_ascii_lowercase(),
        })
    }
}

#[derive(Serialize)]
struct Request<'a> {
    code: &'a str,
    csr_pem: &'a str,
    hostname: &'a str,
    mac: Option<&'a str>,
}

#[derive(Deserialize)]
struct Answer {
    station_id: u32,
    name: String,
    cert_pem: String,
    ca_pem: String,
    station_link_port: u16,
}

/// Largest answer accepted from the box (a certificate chain and a few fields).
const MAX_ANSWER: usize = 64 * 1024;

/// `https://host:port` → (host, port).
fn parse_url(url: &str) -> Result<(String, u16), EnrolError> {
    let bad = || EnrolError::BadUrl(url.to_string());
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h.to_string(), p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (authority.to_string(), 443),
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

/// Enrols this station and saves its identity in `dir`.
pub async fn enrol(
    dir: &Path,
    box_url: &str,
    token: &Token,
    hostname: &str,
    mac: Option<&str>,
) -> Result<Enrolment, EnrolError> {
    tokio::time::timeout(
        Duration::from_secs(30),
        enrol_inner(dir, box_url, token, hostname, mac),
    )
    .await
    .map_err(|_| EnrolError::Timeout)?
}

async fn enrol_inner(
    dir: &Path,
    box_url: &str,
    token: &Token,
    hostname: &str,
    mac: Option<&str>,
) -> Result<Enrolment, EnrolError> {
    let (host, port) = parse_url(box_url)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let csr = params.serialize_request(&key)?.pem()?;

    let tls = rustls::ClientConfig::builder_with_provider(crate::identity::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| EnrolError::Tls(std::io::Error::other(e)))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier::new(&token.ca_fingerprint)))
        .with_no_client_auth();
    let addr = format!("{host}:{port}");
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|source| EnrolError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let name = ServerName::try_from(lanterne_wire::ENROL_SERVER_NAME).expect("static DNS name");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .map_err(EnrolError::Tls)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| EnrolError::Http(e.to_string()))?;
    tokio::spawn(conn);

    let body = serde_json::to_vec(&Request {
        code: &token.code,
        csr_pem: &csr,
        hostname,
        mac,
    })
    .expect("plain struct serialises");
    let req = hyper::Request::post("/api/enrol")
        .header(hyper::header::HOST, &addr)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| EnrolError::Http(e.to_string()))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| EnrolError::Http(e.to_string()))?;
    let status = res.status();
    let bytes = Limited::new(res.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| EnrolError::Http(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        return Err(EnrolError::Refused {
            status: status.as_u16(),
            message,
        });
    }
    let answer: Answer =
        serde_json::from_slice(&bytes).map_err(|e| EnrolError::BadAnswer(e.to_string()))?;
    // The CA we are told to trust from now on must be the one we pinned.
    let ca_der = rustls::pki_types::CertificateDer::from_pem_slice(answer.ca_pem.as_bytes())
        .map_err(|_| EnrolError::BadAnswer("no CA certificate".into()))?;
    if crate::identity::fingerprint(&ca_der) != token.ca_fingerprint {
        return Err(EnrolError::BadAnswer(
            "the CA in the answer is not the pinned one".into(),
        ));
    }
    let link_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let enrolment = Enrolment {
        station_id: answer.station_id,
        name: answer.name,
        link: format!("{link_host}:{}", answer.station_link_port),
    };
    Identity::save(
        dir,
        &enrolment,
        &key.serialize_pem(),
        &answer.cert_pem,
        &answer.ca_pem,
    )?;
    Ok(enrolment)
}

use rustls::pki_types::pem::PemObject;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_parsing() {
        let fp = "ab".repeat(32);
        let t: Token = format!("K7Q2-9XWM-3HPD@{fp}").parse().unwrap();
        assert_eq!(t.code, "K7Q2-9XWM-3HPD");
        assert_eq!(t.ca_fingerprint, fp);
        assert!("nofingerprint".parse::<Token>().is_err());
        assert!(format!("@{fp}").parse::<Token>().is_err());
        assert!("CODE@abc".parse::<Token>().is_err());
        assert!(format!("CODE@{}", "zz".repeat(32))
            .parse::<Token>()
            .is_err());
    }

    #[test]
    fn url_parsing() {
        assert_eq!(
            parse_url("https://127.0.0.1:8443").unwrap(),
            ("127.0.0.1".into(), 8443)
        );
        assert_eq!(
            parse_url("https://box.local/").unwrap(),
            ("box.local".into(), 443)
        );
        assert_eq!(parse_url("https://[::1]:9").unwrap(), ("::1".into(), 9));
        assert!(parse_url("http://box.local").is_err());
        assert!(parse_url("https://:80").is_err());
        assert!(parse_url("https://box:notaport").is_err());
    }
}
