//! A station's identity: its private key, the certificate the box signed for it, the box CA it
//! pins, and where the box is. Kept in the agent's data directory, key readable by the agent
//! only.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("this station is not enrolled yet (no {0}); run `lanterne-station enrol` first")]
    NotEnrolled(PathBuf),
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged: {what}")]
    Damaged { path: PathBuf, what: String },
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// Where the box is and who we are to it, as saved after enrolment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Enrolment {
    pub station_id: u32,
    pub name: String,
    /// `host:port` of the box's station link.
    pub link: String,
}

pub struct Identity {
    pub enrolment: Enrolment,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    ca: CertificateDer<'static>,
}

const META: &str = "station.json";
const KEY: &str = "station.key.pem";
const CERT: &str = "station.cert.pem";
const CA: &str = "box-ca.pem";

impl Identity {
    pub fn is_enrolled(dir: &Path) -> bool {
        [META, KEY, CERT, CA].iter().all(|f| dir.join(f).exists())
    }

    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        let meta_path = dir.join(META);
        if !Self::is_enrolled(dir) {
            return Err(IdentityError::NotEnrolled(meta_path));
        }
        let meta = read(&meta_path)?;
        let enrolment: Enrolment =
            serde_json::from_str(&meta).map_err(|e| IdentityError::Damaged {
                path: meta_path.clone(),
                what: e.to_string(),
            })?;
        let damaged = |path: PathBuf, what: &str| IdentityError::Damaged {
            path,
            what: what.to_string(),
        };
        let cert = CertificateDer::from_pem_slice(read(&dir.join(CERT))?.as_bytes())
            .map_err(|_| damaged(dir.join(CERT), "no PEM certificate"))?;
        let ca = CertificateDer::from_pem_slice(read(&dir.join(CA))?.as_bytes())
            .map_err(|_| damaged(dir.join(CA), "no PEM certificate"))?;
        let key = PrivateKeyDer::from_pem_slice(read(&dir.join(KEY))?.as_bytes())
            .map_err(|_| damaged(dir.join(KEY), "no PEM private key"))?;
        Ok(Identity {
            enrolment,
            cert,
            key,
            ca,
        })
    }

    /// Saves what enrolment produced. The key is written first and 0600.
    pub fn save(
        dir: &Path,
        enrolment: &Enrolment,
        key_pem: &str,
        cert_pem: &str,
        ca_pem: &str,
    ) -> Result<(), IdentityError> {
        fs::create_dir_all(dir).map_err(|source| IdentityError::Io {
            path: dir.into(),
            source,
        })?;
        write(&dir.join(KEY), key_pem.as_bytes(), true)?;
        write(&dir.join(CERT), cert_pem.as_bytes(), false)?;
        write(&dir.join(CA), ca_pem.as_bytes(), false)?;
        let meta = serde_json::to_vec_pretty(enrolment).expect("plain struct serialises");
        // Last: its presence marks a complete enrolment.
        write(&dir.join(META), &meta, false)
    }

    /// TLS for the station link: our certificate, and only the pinned box CA as root.
    pub fn link_tls(&self) -> Result<Arc<ClientConfig>, IdentityError> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone())?;
        let cfg = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![self.cert.clone()], self.key.clone_key())?;
        Ok(Arc::new(cfg))
    }
}

/// The TLS server name on the link (see [`lanterne_wire::LINK_SERVER_NAME`]).
pub const BOX_SERVER_NAME: &str = lanterne_wire::LINK_SERVER_NAME;

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Server verification for enrolment, before the station has the CA: the chain the box
/// presents must contain a CA certificate whose SHA-256 is the fingerprint from the
/// enrolment token, and the server certificate must verify against that CA (signature,
/// validity, name) like any other web PKI check.
#[derive(Debug)]
pub struct PinnedCaVerifier {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl PinnedCaVerifier {
    pub fn new(fingerprint: &str) -> Self {
        PinnedCaVerifier {
            fingerprint: fingerprint.to_ascii_lowercase(),
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pinned = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.fingerprint)
            .ok_or_else(|| {
                rustls::Error::General(
                    "the box did not present the CA named in the enrolment token".into(),
                )
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(pinned.clone().into_owned())?;
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn read(path: &Path) -> Result<String, IdentityError> {
    fs::read_to_string(path).map_err(|source| IdentityError::Io {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, data: &[u8], private: bool) -> Result<(), IdentityError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| IdentityError::Io {
        path: path.into(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}
