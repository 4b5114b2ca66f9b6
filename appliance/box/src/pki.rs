//! The box's own small certificate authority.
//!
//! Created on first start in the data directory; it signs
//! * the box's server certificate (HTTPS for tablets, TLS for the station link), made anew at
//!   every start so its names always match the configuration, and
//! * one client certificate per enrolled station, from the station's CSR. Only the public key
//!   of the CSR is used: the box decides the subject, the validity and the key usages, so a
//!   station cannot ask for a CA certificate or a server name.
//!
//! Stations pin this CA; tablets are told to trust it (docs/operations.md) unless the school
//! gives the box a certificate of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate operation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the certificate request is not valid: {0}")]
    BadCsr(String),
    #[error("{path} holds no usable PEM {what}")]
    BadPem { path: PathBuf, what: &'static str },
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// A station certificate lasts ten years: re-enrolment is a manual act, and the box can revoke
/// a station at any moment by removing it from its database (checked on every connection).
const STATION_CERT_DAYS: i64 = 3650;
const CA_DAYS: i64 = 3650 * 3;

/// The CA, loaded from (or created in) the data directory.
pub struct BoxCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl BoxCa {
    /// Loads `ca.key.pem` / `ca.cert.pem` from `dir`, creating them on first start.
    pub fn load_or_create(dir: &Path, room_name: &str) -> Result<Self, PkiError> {
        let key_path = dir.join("ca.key.pem");
        let cert_path = dir.join("ca.cert.pem");
        if key_path.exists() && cert_path.exists() {
            let key_pem = read(&key_path)?;
            let cert_pem = read(&cert_path)?;
            let key = KeyPair::from_pem(&key_pem)?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
            let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|_| {
                PkiError::BadPem {
                    path: cert_path.clone(),
                    what: "certificate",
                }
            })?;
            return Ok(BoxCa {
                issuer,
                cert_der,
                cert_pem,
            });
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Lanterne box CA — {room_name}"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Lanterne");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = params.not_before + time::Duration::days(CA_DAYS);
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        write(&cert_path, cert.pem().as_bytes())?;
        tracing::info!(path = %cert_path.display(), "created the box certificate authority");
        let cert_pem = cert.pem();
        Ok(BoxCa {
            issuer: Issuer::new(params, key),
            cert_der: cert.der().clone(),
            cert_pem,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the CA certificate (hex), the value a station pins at enrolment.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// A fresh server key and certificate for `names` (DNS names or IP addresses).
    pub fn issue_server_cert(&self, names: &[String]) -> Result<ServerIdentity, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "lanterne-box");
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(n.as_str().try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        // Browsers refuse server certificates valid for more than ~13 months.
        params.not_after = params.not_before + time::Duration::days(390);
        params.serial_number = Some(random_serial());
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone(), self.cert_der.clone()],
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        })
    }

    /// Signs a station's CSR. The certificate's subject is `lanterne-station-<id>`; nothing
    /// from the CSR but its public key is used. The signature over the CSR is checked, which
    /// proves the station holds the private key.
    pub fn sign_station_csr(
        &self,
        csr_pem: &str,
        station_id: u32,
    ) -> Result<(String, String), PkiError> {
        if csr_pem.len() > 16 * 1024 {
            return Err(PkiError::BadCsr("larger than 16 KiB".into()));
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::BadCsr(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("lanterne-station-{station_id}"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = params.not_before + time::Duration::days(STATION_CERT_DAYS);
        params.serial_number = Some(random_serial());
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        Ok((cert.pem(), fingerprint(cert.der())))
    }

    /// Roots containing only this CA, for verifying station client certificates.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert_der.clone())
            .expect("our own CA certificate parses");
        roots
    }
}

/// A server certificate chain and its key.
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        ServerIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl ServerIdentity {
    /// Loads a certificate the school provides (PEM chain + PEM key).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, PkiError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|_| PkiError::BadPem {
                path: cert.into(),
                what: "certificate",
            })?
            .collect::<Result<_, _>>()
            .map_err(|_| PkiError::BadPem {
                path: cert.into(),
                what: "certificate",
            })?;
        if chain.is_empty() {
            return Err(PkiError::BadPem {
                path: cert.into(),
                what: "certificate",
            });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|_| PkiError::BadPem {
            path: key.into(),
            what: "private key",
        })?;
        Ok(ServerIdentity { chain, key })
    }
}

/// The crypto provider with cipher suites ordered for this CPU: AES-GCM first where the CPU
/// has AES instructions, ChaCha20-Poly1305 first where it does not (the Pi 4's Cortex-A72,
/// where ChaCha20 is about four times faster). The server's order wins (`ignore_client_order`).
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    if !cpu_has_aes() {
        p.cipher_suites.sort_by_key(|s| {
            !matches!(
                s.suite(),
                rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            )
        });
    }
    Arc::new(p)
}

/// Whether the CPU has AES instructions; decides the preferred cipher suite.
pub fn cpu_has_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// TLS for the station link: TLS 1.3 only, and a client certificate signed by our CA is
/// required — a peer without one fails the handshake.
pub fn station_link_config(
    ca: &BoxCa,
    server: &ServerIdentity,
) -> Result<Arc<ServerConfig>, PkiError> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider.clone())
            .build()
            .map_err(|e| PkiError::Verifier(e.to_string()))?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(server.chain.clone(), server.key.clone_key())?;
    cfg.ignore_client_order = true;
    Ok(Arc::new(cfg))
}

/// TLS for the web server: TLS 1.2 and 1.3, HTTP/1.1 (see `web::serve` for why not h2).
pub fn https_config(server: &ServerIdentity) -> Result<Arc<ServerConfig>, PkiError> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(server.chain.clone(), server.key.clone_key())?;
    cfg.ignore_client_order = true;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// SHA-256 of a DER certificate, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.into(),
        source,
    })
}

fn write(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    fs::write(path, data).map_err(|source| PkiError::Io {
        path: path.into(),
        source,
    })
}

/// Writes a private key readable by the owner only.
fn write_private(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.into(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_survives_a_restart_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let a = BoxCa::load_or_create(dir.path(), "Salle 12").unwrap();
        let b = BoxCa::load_or_create(dir.path(), "Salle 12").unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(dir.path().join("ca.key.pem"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0, "CA key must not be readable by others");
    }

    #[test]
    fn station_cert_ignores_what_the_csr_asks_for() {
        let dir = tempfile::tempdir().unwrap();
        let ca = BoxCa::load_or_create(dir.path(), "Salle 12").unwrap();
        let key = KeyPair::generate().unwrap();
        let mut wish = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        wish.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let csr = wish.serialize_request(&key).unwrap().pem().unwrap();
        let (pem, fp) = ca.sign_station_csr(&csr, 7).unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(fingerprint(&der), fp);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(!cert.is_ca());
        assert_eq!(
            cert.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "lanterne-station-7"
        );
        assert!(cert.subject_alternative_name().unwrap().is_none());
    }

    #[test]
    fn garbage_csr_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = BoxCa::load_or_create(dir.path(), "Salle 12").unwrap();
        assert!(matches!(
            ca.sign_station_csr(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                1
            ),
            Err(PkiError::BadCsr(_))
        ));
        assert!(matches!(
            ca.sign_station_csr(&"x".repeat(20_000), 1),
            Err(PkiError::BadCsr(_))
        ));
    }

    #[test]
    fn chacha_first_when_the_cpu_has_no_aes() {
        let p = provider();
        let first = p.cipher_suites[0].suite();
        let chacha = first == rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256;
        assert_eq!(chacha, !cpu_has_aes());
    }
}
