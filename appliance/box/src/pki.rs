//! The box's two certificate authorities, kept apart on purpose.
//!
//! * The **station CA** (`station-ca.key.pem`, `station-ca.cert.pem`) is what station agents
//!   pin at enrolment (its SHA-256 travels in the one-time token). It signs the station
//!   link's server certificate and one client certificate per enrolled station, from the
//!   station's CSR: only the CSR's public key is used — the box decides the subject, the
//!   validity and the key usages, so a station cannot ask for a CA certificate or a server
//!   name. Nobody else ever needs to trust it; in particular it is never installed on a
//!   tablet.
//! * The **HTTPS CA** (`https-ca.key.pem`, `https-ca.cert.pem`) is what schools install on
//!   their tablets (unless they give the box a certificate of their own). It carries X.509
//!   name constraints listing exactly the box's own names and addresses, and the server-auth
//!   purpose only, so a tablet that trusts it trusts nothing else: a stolen box cannot be used
//!   to intercept the tablet's traffic to any other site. It is made anew, with a new key,
//!   when the configured names outgrow its constraints (the tablets must then install it
//!   again; the box says so in its log).
//!
//! Enrolment still runs over the HTTPS port, yet the one-time code is only ever sent over a
//! connection verified against the pinned station CA: the station asks for the reserved
//! server name [`lanterne_wire::ENROL_SERVER_NAME`] (TLS SNI), and for that name alone the
//! HTTPS listener presents the station link's certificate (see [`https_config`]). This also
//! makes enrolment work when the school's own certificate serves HTTPS.
//!
//! Boxes made before the split have one CA (`ca.key.pem`, `ca.cert.pem`) that did both jobs.
//! It becomes the station CA (renamed on start, fingerprint unchanged: enrolled stations keep
//! working), and a new HTTPS CA is made; docs/operations.md tells schools to remove the old
//! CA from their tablets.
//!
//! Station certificates live for `stations.certificate_days` (about six months by default)
//! and are renewed over the station link once half of that has passed (see
//! [`StationCa::renewal_due_in`]).

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, CidrSubnet,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
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
    #[error("'{0}' is not a DNS name or IP address the HTTPS CA can be constrained to")]
    BadName(String),
    #[error("{0} does not hold the key of the certificate beside it")]
    KeyMismatch(PathBuf),
}

/// How long a station certificate lives unless the configuration says otherwise
/// (`stations.certificate_days`): about six months.
pub const DEFAULT_STATION_CERT_DAYS: u32 = 182;
const CA_DAYS: i64 = 3650 * 3;
/// Certificates start this much before they are issued, so a station or tablet whose clock is
/// a little behind still accepts them.
const BACKDATE: time::Duration = time::Duration::days(1);

const STATION_CA: CaFiles = CaFiles {
    key: "station-ca.key.pem",
    cert: "station-ca.cert.pem",
};
const HTTPS_CA: CaFiles = CaFiles {
    key: "https-ca.key.pem",
    cert: "https-ca.cert.pem",
};
/// The single CA of boxes made before the split; becomes the station CA.
const LEGACY_CA: CaFiles = CaFiles {
    key: "ca.key.pem",
    cert: "ca.cert.pem",
};

/// Where one CA's key and certificate live in the data directory.
#[derive(Clone, Copy)]
struct CaFiles {
    key: &'static str,
    cert: &'static str,
}

/// A CA's signing half and its certificate.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl Ca {
    fn load(dir: &Path, files: CaFiles) -> Result<Option<Self>, PkiError> {
        let key_path = dir.join(files.key);
        let cert_path = dir.join(files.cert);
        if !(key_path.exists() && cert_path.exists()) {
            return Ok(None);
        }
        let key = KeyPair::from_pem(&read(&key_path)?)?;
        let cert_pem = read(&cert_path)?;
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|_| PkiError::BadPem {
                path: cert_path.clone(),
                what: "certificate",
            })?;
        // A CA replaced by a start that was cut short could leave a new key beside the old
        // certificate; signing with it would make certificates nobody can verify.
        let spki = x509_parser::parse_x509_certificate(&cert_der)
            .map(|(_, c)| c.public_key().raw.to_vec())
            .map_err(|_| PkiError::BadPem {
                path: cert_path.clone(),
                what: "certificate",
            })?;
        if spki != rcgen::PublicKeyData::subject_public_key_info(&key) {
            return Err(PkiError::KeyMismatch(key_path));
        }
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Some(Ca {
            issuer,
            cert_der,
            cert_pem,
        }))
    }

    /// Makes a CA and saves it, each file replaced atomically: the key (0600) first, then the
    /// certificate. A start cut short in between leaves a key that does not match the
    /// certificate, which [`Ca::load`] detects.
    fn create(dir: &Path, files: CaFiles, params: CertificateParams) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        write_atomic(&dir.join(files.key), key.serialize_pem().as_bytes(), 0o600)?;
        write_atomic(&dir.join(files.cert), cert.pem().as_bytes(), 0o644)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// A fresh server key and certificate for `names`, chained to this CA.
    fn issue_server_cert(&self, names: &[String]) -> Result<ServerIdentity, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, lanterne_wire::LINK_SERVER_NAME);
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(n.as_str().try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = time::OffsetDateTime::now_utc() - BACKDATE;
        // Browsers refuse server certificates valid for more than ~13 months.
        params.not_after = params.not_before + time::Duration::days(390);
        params.serial_number = Some(random_serial());
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone(), self.cert_der.clone()],
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        })
    }
}

fn ca_params(common_name: String) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Lanterne");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = time::OffsetDateTime::now_utc() - BACKDATE;
    params.not_after = params.not_before + time::Duration::days(CA_DAYS);
    params.serial_number = Some(random_serial());
    params
}

/// The CA that stations pin: signs the station link's server certificate and the stations'
/// client certificates.
pub struct StationCa {
    ca: Ca,
    station_cert_lifetime: Duration,
}

/// The name the web layer knows the station CA by (it signs enrolment requests).
pub type BoxCa = StationCa;

impl StationCa {
    /// Loads the station CA from `dir`, taking over the single CA of a box made before the
    /// split, or creates it on first start. Station certificates it signs live
    /// [`DEFAULT_STATION_CERT_DAYS`] until [`StationCa::with_station_cert_days`] says
    /// otherwise.
    pub fn load_or_create(dir: &Path, room_name: &str) -> Result<Self, PkiError> {
        migrate_legacy_ca(dir)?;
        let ca = match Ca::load(dir, STATION_CA)? {
            Some(ca) => ca,
            None => {
                let ca = Ca::create(
                    dir,
                    STATION_CA,
                    ca_params(format!("Lanterne station CA — {room_name}")),
                )?;
                tracing::info!(
                    path = %dir.join(STATION_CA.cert).display(),
                    "created the station certificate authority"
                );
                ca
            }
        };
        Ok(StationCa {
            ca,
            station_cert_lifetime: Duration::from_secs(
                u64::from(DEFAULT_STATION_CERT_DAYS) * 86_400,
            ),
        })
    }

    pub fn with_station_cert_days(self, days: u32) -> Self {
        self.with_station_cert_lifetime(Duration::from_secs(u64::from(days) * 86_400))
    }

    /// Any lifetime (tests use seconds).
    pub fn with_station_cert_lifetime(mut self, lifetime: Duration) -> Self {
        self.station_cert_lifetime = lifetime;
        self
    }

    pub fn station_cert_lifetime(&self) -> Duration {
        self.station_cert_lifetime
    }

    /// Where the station CA certificate lives in a data directory.
    pub fn cert_path(dir: &Path) -> PathBuf {
        dir.join(STATION_CA.cert)
    }

    pub fn cert_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.ca.cert_der
    }

    /// SHA-256 of the CA certificate (hex), the value a station pins at enrolment.
    pub fn fingerprint(&self) -> String {
        self.ca.fingerprint()
    }

    /// The station link's server certificate. It names only what stations ask for: the
    /// fixed link name (whatever address DHCP gave the box) and the reserved enrolment name.
    pub fn issue_link_cert(&self) -> Result<ServerIdentity, PkiError> {
        self.ca.issue_server_cert(&[
            lanterne_wire::LINK_SERVER_NAME.to_string(),
            lanterne_wire::ENROL_SERVER_NAME.to_string(),
        ])
    }

    /// Signs a station's CSR. The certificate's subject is `lanterne-station-<id>`; nothing
    /// from the CSR but its public key is used. The signature over the CSR is checked, which
    /// proves the station holds the private key. Returns the PEM and its fingerprint.
    pub fn sign_station_csr(
        &self,
        csr_pem: &str,
        station_id: u32,
    ) -> Result<(String, String), PkiError> {
        if csr_pem.len() > lanterne_wire::MAX_PEM_LEN {
            return Err(PkiError::BadCsr(format!(
                "larger than {} KiB",
                lanterne_wire::MAX_PEM_LEN / 1024
            )));
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
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + self.station_cert_lifetime;
        params.serial_number = Some(random_serial());
        let cert = params.signed_by(&csr.public_key, &self.ca.issuer)?;
        Ok((cert.pem(), fingerprint(cert.der())))
    }

    /// When the box should offer a station a new certificate, counted from now: once half of
    /// the configured lifetime has passed, or at once when the certificate outlives the
    /// configured lifetime by more than a tenth (issued under a longer policy, such as the
    /// ten-year certificates of earlier versions, or before the lifetime was shortened).
    /// `None` when the certificate cannot be read.
    ///
    /// Half, not the last third: a station left off for the summer holidays (two months in
    /// France) must still hold a valid certificate when it comes back, or it would have to be
    /// enrolled again; with the default 182 days it may stay off for three months.
    pub fn renewal_due_in(&self, cert: &[u8]) -> Option<Duration> {
        let not_after = x509_parser::parse_x509_certificate(cert)
            .ok()?
            .1
            .validity()
            .not_after
            .timestamp();
        Some(renewal_due_in(
            not_after,
            time::OffsetDateTime::now_utc().unix_timestamp(),
            self.station_cert_lifetime,
        ))
    }

    /// Roots containing only this CA, for verifying station client certificates.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca.cert_der.clone())
            .expect("our own CA certificate parses");
        roots
    }
}

/// [`StationCa::renewal_due_in`] on plain Unix times (seconds).
fn renewal_due_in(not_after: i64, now: i64, lifetime: Duration) -> Duration {
    let lifetime = lifetime.as_secs() as i64;
    let remaining = not_after - now;
    if remaining > lifetime + lifetime / 10 {
        return Duration::ZERO;
    }
    let renew_at = not_after - lifetime / 2;
    Duration::from_secs((renew_at - now).max(0) as u64)
}

/// Renames the single CA of a box made before the split to the station CA's files. Each
/// file moves on its own, so a start interrupted half-way finishes the move next time.
fn migrate_legacy_ca(dir: &Path) -> Result<(), PkiError> {
    let mut moved = false;
    for (old, new) in [
        (LEGACY_CA.key, STATION_CA.key),
        (LEGACY_CA.cert, STATION_CA.cert),
    ] {
        let (old, new) = (dir.join(old), dir.join(new));
        if old.exists() && !new.exists() {
            fs::rename(&old, &new).map_err(|source| PkiError::Io {
                path: old.clone(),
                source,
            })?;
            moved = true;
        }
    }
    if moved {
        sync_dir(dir)?;
        tracing::warn!(
            "the box's former single CA (ca.cert.pem) is now the station CA \
             ({}): enrolled stations keep working; tablets that trusted it must remove it \
             and install the HTTPS CA ({}) instead (docs/operations.md)",
            STATION_CA.cert,
            HTTPS_CA.cert
        );
    }
    Ok(())
}

/// The CA that tablets trust for HTTPS, name-constrained to the box's own names.
pub struct HttpsCa {
    ca: Ca,
}

impl HttpsCa {
    /// Loads the HTTPS CA from `dir` if its name constraints cover every one of `names`;
    /// otherwise (first start, or names added since) makes a new one constrained to `names`.
    pub fn load_or_create(dir: &Path, room_name: &str, names: &[String]) -> Result<Self, PkiError> {
        let subtrees = names
            .iter()
            .map(|n| permitted_subtree(n))
            .collect::<Result<Vec<_>, _>>()?;
        let why_new = match Ca::load(dir, HTTPS_CA) {
            Ok(None) => None,
            Ok(Some(ca)) => {
                let permitted = permitted_subtrees(&ca.cert_der);
                if subtrees.iter().all(|s| covered(&permitted, s)) {
                    return Ok(HttpsCa { ca });
                }
                Some("the box's names are no longer all within its name constraints".to_string())
            }
            // Replaced half-way by an interrupted start: the tablets cannot have installed
            // the new one yet, so making it again loses nothing.
            Err(e @ PkiError::KeyMismatch(_)) => Some(e.to_string()),
            Err(e) => return Err(e),
        };
        if let Some(why) = why_new {
            tracing::warn!(
                ?names,
                "making a new HTTPS CA ({why}); install {} on the tablets again and remove \
                 the old one",
                dir.join(HTTPS_CA.cert).display()
            );
        }
        let mut params = ca_params(format!("Lanterne HTTPS CA — {room_name}"));
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: subtrees,
            excluded_subtrees: Vec::new(),
        });
        // A tablet that honours the purpose on a CA will not accept client or code-signing
        // certificates from it either.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let ca = Ca::create(dir, HTTPS_CA, params)?;
        tracing::info!(
            path = %dir.join(HTTPS_CA.cert).display(),
            ?names,
            "created the HTTPS certificate authority, constrained to the box's names"
        );
        Ok(HttpsCa { ca })
    }

    /// Where the HTTPS CA certificate lives in a data directory.
    pub fn cert_path(dir: &Path) -> PathBuf {
        dir.join(HTTPS_CA.cert)
    }

    pub fn cert_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.ca.cert_der
    }

    pub fn fingerprint(&self) -> String {
        self.ca.fingerprint()
    }

    /// A fresh server key and certificate for `names` (DNS names or IP addresses), which
    /// must be within the CA's constraints (tablets would refuse it otherwise).
    pub fn issue_server_cert(&self, names: &[String]) -> Result<ServerIdentity, PkiError> {
        self.ca.issue_server_cert(names)
    }
}

/// The name constraint for one of the box's names: the DNS name itself (which, by RFC 5280,
/// also permits names below it) or the single address (/32 or /128).
fn permitted_subtree(name: &str) -> Result<GeneralSubtree, PkiError> {
    Ok(match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => GeneralSubtree::IpAddress(CidrSubnet::V4(ip.octets(), [0xff; 4])),
        Ok(IpAddr::V6(ip)) => GeneralSubtree::IpAddress(CidrSubnet::V6(ip.octets(), [0xff; 16])),
        Err(_) if is_dns_name(name) => GeneralSubtree::DnsName(name.to_ascii_lowercase()),
        Err(_) => return Err(PkiError::BadName(name.to_string())),
    })
}

/// Whether `name` is a DNS host name: dot-separated labels of letters, digits and inner
/// hyphens.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The permitted subtrees of a CA certificate (empty when it has none or cannot be read).
fn permitted_subtrees(der: &[u8]) -> Vec<GeneralSubtree> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(nc)) = cert.name_constraints() else {
        return Vec::new();
    };
    nc.value
        .permitted_subtrees
        .iter()
        .flatten()
        .filter_map(|s| match &s.base {
            GeneralName::DNSName(d) => Some(GeneralSubtree::DnsName(d.to_ascii_lowercase())),
            GeneralName::IPAddress(b) if b.len() == 8 => Some(GeneralSubtree::IpAddress(
                CidrSubnet::V4(b[..4].try_into().ok()?, b[4..].try_into().ok()?),
            )),
            GeneralName::IPAddress(b) if b.len() == 32 => Some(GeneralSubtree::IpAddress(
                CidrSubnet::V6(b[..16].try_into().ok()?, b[16..].try_into().ok()?),
            )),
            _ => None,
        })
        .collect()
}

/// Whether `wanted` (one name's subtree) lies within one of `permitted`.
fn covered(permitted: &[GeneralSubtree], wanted: &GeneralSubtree) -> bool {
    permitted.iter().any(|p| match (p, wanted) {
        (GeneralSubtree::DnsName(base), GeneralSubtree::DnsName(name)) => {
            name == base || name.ends_with(&format!(".{base}"))
        }
        (
            GeneralSubtree::IpAddress(CidrSubnet::V4(base, mask)),
            GeneralSubtree::IpAddress(CidrSubnet::V4(ip, _)),
        ) => (0..4).all(|i| ip[i] & mask[i] == base[i] & mask[i]),
        (
            GeneralSubtree::IpAddress(CidrSubnet::V6(base, mask)),
            GeneralSubtree::IpAddress(CidrSubnet::V6(ip, _)),
        ) => (0..16).all(|i| ip[i] & mask[i] == base[i] & mask[i]),
        _ => false,
    })
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

    fn certified_key(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, PkiError> {
        Ok(Arc::new(CertifiedKey::from_der(
            self.chain.clone(),
            self.key.clone_key(),
            provider,
        )?))
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

/// TLS for the station link: TLS 1.3 only, and a client certificate signed by the station CA
/// is required — a peer without one fails the handshake.
pub fn station_link_config(
    ca: &StationCa,
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
/// `https` is what tablets see; a client asking for [`lanterne_wire::ENROL_SERVER_NAME`] (a
/// station enrolling) gets `enrol`, the station link's certificate, which it checks against
/// the station CA it pinned from its token.
pub fn https_config(
    https: &ServerIdentity,
    enrol: &ServerIdentity,
) -> Result<Arc<ServerConfig>, PkiError> {
    let provider = provider();
    let resolver = Arc::new(EnrolSni {
        https: https.certified_key(&provider)?,
        enrol: enrol.certified_key(&provider)?,
    });
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.ignore_client_order = true;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Picks the HTTPS certificate by the name the client asked for.
#[derive(Debug)]
struct EnrolSni {
    https: Arc<CertifiedKey>,
    enrol: Arc<CertifiedKey>,
}

impl ResolvesServerCert for EnrolSni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            if hello
                .server_name()
                .is_some_and(|n| n.eq_ignore_ascii_case(lanterne_wire::ENROL_SERVER_NAME))
            {
                self.enrol.clone()
            } else {
                self.https.clone()
            },
        )
    }
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

/// Writes `data` to a temporary file (created with `mode`), syncs it and renames it over
/// `path`: a reader (or a power cut) sees the old file or the new one, never half of one.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    write_file(&tmp, data, mode)?;
    fs::rename(&tmp, path).map_err(|source| PkiError::Io {
        path: path.into(),
        source,
    })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
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
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}

fn sync_dir(dir: &Path) -> Result<(), PkiError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| PkiError::Io {
            path: dir.into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls_pki_types::{ServerName, UnixTime};
    use x509_parser::extensions::GeneralName;

    fn names() -> Vec<String> {
        [
            "lanterne-box",
            "localhost",
            "127.0.0.1",
            "::1",
            "salle12.lycee.local",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn mode(path: &Path) -> u32 {
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata(path).unwrap().permissions())
    }

    /// A verifier like a tablet's: the HTTPS CA as its only root.
    fn tablet_verifier(ca: &CertificateDer<'static>) -> Arc<WebPkiServerVerifier> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap()
    }

    fn verify(
        verifier: &WebPkiServerVerifier,
        id: &ServerIdentity,
        name: &str,
    ) -> Result<(), rustls::Error> {
        verifier
            .verify_server_cert(
                &id.chain[0],
                &id.chain[1..],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    #[test]
    fn station_ca_survives_a_restart_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let a = StationCa::load_or_create(dir.path(), "Salle 12").unwrap();
        let b = StationCa::load_or_create(dir.path(), "Salle 12").unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            mode(&dir.path().join(STATION_CA.key)) & 0o077,
            0,
            "CA key must not be readable by others"
        );
    }

    #[test]
    fn https_ca_carries_name_constraints_for_the_box_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = HttpsCa::load_or_create(dir.path(), "Salle 12", &names()).unwrap();
        assert_eq!(mode(&dir.path().join(HTTPS_CA.key)) & 0o077, 0);
        let pem = fs::read(HttpsCa::cert_path(dir.path())).unwrap();
        let der = CertificateDer::from_pem_slice(&pem).unwrap();
        assert_eq!(&der, ca.cert_der());
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert.is_ca());
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert_eq!(bc.path_len_constraint, Some(0));
        let nc = cert
            .name_constraints()
            .unwrap()
            .expect("the HTTPS CA has name constraints");
        assert!(nc.critical, "RFC 5280: name constraints must be critical");
        assert!(nc.value.excluded_subtrees.is_none());
        let mut permitted: Vec<String> = nc
            .value
            .permitted_subtrees
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| match &s.base {
                GeneralName::DNSName(d) => format!("dns:{d}"),
                GeneralName::IPAddress(b) => format!("ip:{}", hex::encode(b)),
                other => panic!("unexpected subtree {other:?}"),
            })
            .collect();
        permitted.sort();
        let mut v6 = [0u8; 32];
        v6[15] = 1;
        v6[16..].fill(0xff);
        let mut expected = vec![
            "dns:lanterne-box".to_string(),
            "dns:localhost".to_string(),
            "dns:salle12.lycee.local".to_string(),
            "ip:7f000001ffffffff".to_string(),
            format!("ip:{}", hex::encode(v6)),
        ];
        expected.sort();
        assert_eq!(permitted, expected);
        // Server authentication only.
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth && !eku.code_signing && !eku.any);
    }

    /// The constraint is effective, not just present: a verifier (webpki, as in rustls)
    /// refuses a certificate the HTTPS CA's key signed for any other name or address, while
    /// the same certificate from an unconstrained CA passes.
    #[test]
    fn a_certificate_outside_the_constraints_is_refused_by_a_verifier() {
        let dir = tempfile::tempdir().unwrap();
        let https = HttpsCa::load_or_create(dir.path(), "Salle 12", &names()).unwrap();
        let tablet = tablet_verifier(https.cert_der());

        // The box's own names verify.
        let good = https.issue_server_cert(&names()).unwrap();
        for n in ["salle12.lycee.local", "localhost", "127.0.0.1"] {
            verify(&tablet, &good, n).unwrap_or_else(|e| panic!("{n}: {e}"));
        }
        // So does a name below one of them (RFC 5280 subtree semantics).
        let below = https
            .issue_server_cert(&["www.salle12.lycee.local".into()])
            .unwrap();
        verify(&tablet, &below, "www.salle12.lycee.local").unwrap();

        // Anything else, signed with the same key, is refused.
        for evil in ["www.google.com", "lycee.local", "10.0.0.1", "192.168.1.1"] {
            let forged = https.issue_server_cert(&[evil.to_string()]).unwrap();
            let err = verify(&tablet, &forged, evil).expect_err(evil);
            assert!(
                format!("{err:?}").contains("NameConstraintViolation"),
                "{evil}: {err:?}"
            );
        }
        // A forged certificate that also lists a permitted name is refused too.
        let mixed = https
            .issue_server_cert(&["localhost".into(), "www.google.com".into()])
            .unwrap();
        assert!(verify(&tablet, &mixed, "www.google.com").is_err());

        // Control: the same forgery from an unconstrained CA verifies, so the refusal above
        // is the constraint's doing.
        let open = tempfile::tempdir().unwrap();
        let open_ca = StationCa::load_or_create(open.path(), "x").unwrap();
        let forged = open_ca
            .ca
            .issue_server_cert(&["www.google.com".into()])
            .unwrap();
        verify(
            &tablet_verifier(open_ca.cert_der()),
            &forged,
            "www.google.com",
        )
        .unwrap();
    }

    #[test]
    fn the_station_ca_is_separate_and_never_in_the_https_chain() {
        let dir = tempfile::tempdir().unwrap();
        let station = StationCa::load_or_create(dir.path(), "Salle 12").unwrap();
        let https = HttpsCa::load_or_create(dir.path(), "Salle 12", &names()).unwrap();
        assert_ne!(station.fingerprint(), https.fingerprint());
        assert_ne!(
            fs::read(dir.path().join(STATION_CA.key)).unwrap(),
            fs::read(dir.path().join(HTTPS_CA.key)).unwrap()
        );
        let served = https.issue_server_cert(&names()).unwrap();
        assert!(served.chain.iter().all(|c| c != station.cert_der()));
        // A tablet trusting the HTTPS CA does not accept the station link's certificate.
        let link = station.issue_link_cert().unwrap();
        assert!(verify(&tablet_verifier(https.cert_der()), &link, "lanterne-box").is_err());
        // The link certificate names only what stations ask for.
        let (_, cert) = x509_parser::parse_x509_certificate(&link.chain[0]).unwrap();
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert_eq!(
            sans,
            [
                format!("DNSName({})", lanterne_wire::LINK_SERVER_NAME),
                format!("DNSName({})", lanterne_wire::ENROL_SERVER_NAME)
            ]
        );
        // And station certificates verify only against the station CA.
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let (pem, _) = station.sign_station_csr(&csr, 3).unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let client_verifier = |roots: RootCertStore| {
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap()
        };
        let mut https_roots = RootCertStore::empty();
        https_roots.add(https.cert_der().clone()).unwrap();
        assert!(client_verifier(station.roots())
            .verify_client_cert(&der, &[], UnixTime::now())
            .is_ok());
        assert!(client_verifier(https_roots)
            .verify_client_cert(&der, &[], UnixTime::now())
            .is_err());
    }

    /// Existing boxes have one CA (`ca.*.pem`); it becomes the station CA with the same
    /// fingerprint (stations pinned it), and a new, constrained HTTPS CA appears beside it.
    #[test]
    fn the_single_ca_of_an_existing_box_becomes_the_station_ca() {
        let dir = tempfile::tempdir().unwrap();
        let old = StationCa::load_or_create(dir.path(), "Salle 12").unwrap();
        for (new, legacy) in [
            (STATION_CA.key, LEGACY_CA.key),
            (STATION_CA.cert, LEGACY_CA.cert),
        ] {
            fs::rename(dir.path().join(new), dir.path().join(legacy)).unwrap();
        }
        let migrated = StationCa::load_or_create(dir.path(), "Salle 12").unwrap();
        assert_eq!(migrated.fingerprint(), old.fingerprint());
        assert!(!dir.path().join(LEGACY_CA.cert).exists());
        assert!(!dir.path().join(LEGACY_CA.key).exists());
        assert_eq!(mode(&dir.path().join(STATION_CA.key)) & 0o077, 0);
        let https = HttpsCa::load_or_create(dir.path(), "Salle 12", &names()).unwrap();
        assert_ne!(https.fingerprint(), old.fingerprint());

        // A migration cut short after the key moved finishes at the next start.
        fs::rename(
            dir.path().join(STATION_CA.cert),
            dir.path().join(LEGACY_CA.cert),
        )
        .unwrap();
        let again = StationCa::load_or_create(dir.path(), "Salle 12").unwrap();
        assert_eq!(again.fingerprint(), old.fingerprint());
    }

    #[test]
    fn the_https_ca_is_kept_while_it_covers_the_names_and_remade_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let first = HttpsCa::load_or_create(dir.path(), "S", &names()).unwrap();
        // Same names, fewer names, a name below a permitted one, in another case: kept.
        for list in [
            names(),
            vec!["localhost".to_string()],
            vec!["Poste.Salle12.lycee.local".to_string(), "127.0.0.1".into()],
        ] {
            let again = HttpsCa::load_or_create(dir.path(), "S", &list).unwrap();
            assert_eq!(again.fingerprint(), first.fingerprint(), "{list:?}");
        }
        // A new name or address: a new CA, constrained to the new list.
        let mut more = names();
        more.push("192.168.10.5".into());
        let second = HttpsCa::load_or_create(dir.path(), "S", &more).unwrap();
        assert_ne!(second.fingerprint(), first.fingerprint());
        let id = second.issue_server_cert(&more).unwrap();
        verify(&tablet_verifier(second.cert_der()), &id, "192.168.10.5").unwrap();

        // A key that does not match the certificate (a replacement cut short): remade too.
        let other = KeyPair::generate().unwrap();
        fs::write(dir.path().join(HTTPS_CA.key), other.serialize_pem()).unwrap();
        let third = HttpsCa::load_or_create(dir.path(), "S", &more).unwrap();
        assert_ne!(third.fingerprint(), second.fingerprint());
        let id = third.issue_server_cert(&more).unwrap();
        verify(&tablet_verifier(third.cert_der()), &id, "localhost").unwrap();
    }

    #[test]
    fn names_that_cannot_be_constrained_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "a b", "-", "a..b", "x_y.local"] {
            let r = HttpsCa::load_or_create(dir.path(), "S", &[bad.to_string()]);
            assert!(matches!(r, Err(PkiError::BadName(_))), "{bad:?}");
        }
    }

    /// The HTTPS listener shows tablets the HTTPS certificate and an enrolling station (which
    /// asks for the reserved name) the station link's, over a real in-memory handshake.
    #[test]
    fn the_https_listener_picks_the_certificate_by_server_name() {
        let dir = tempfile::tempdir().unwrap();
        let station = StationCa::load_or_create(dir.path(), "S").unwrap();
        let https = HttpsCa::load_or_create(dir.path(), "S", &names()).unwrap();
        let server_cfg = https_config(
            &https.issue_server_cert(&names()).unwrap(),
            &station.issue_link_cert().unwrap(),
        )
        .unwrap();
        let served = |name: &str, root: &CertificateDer<'static>| -> Result<(), rustls::Error> {
            let mut roots = RootCertStore::empty();
            roots.add(root.clone()).unwrap();
            let client_cfg = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let mut client = rustls::ClientConnection::new(
                Arc::new(client_cfg),
                ServerName::try_from(name.to_string()).unwrap(),
            )
            .unwrap();
            let mut server = rustls::ServerConnection::new(server_cfg.clone()).unwrap();
            for _ in 0..10 {
                let mut buf = Vec::new();
                client.write_tls(&mut buf).unwrap();
                server.read_tls(&mut &buf[..]).unwrap();
                server.process_new_packets()?;
                let mut buf = Vec::new();
                server.write_tls(&mut buf).unwrap();
                client.read_tls(&mut &buf[..]).unwrap();
                client.process_new_packets()?;
                if !client.is_handshaking() {
                    return Ok(());
                }
            }
            panic!("handshake did not finish");
        };
        served("salle12.lycee.local", https.cert_der()).unwrap();
        served("127.0.0.1", https.cert_der()).unwrap();
        served(lanterne_wire::ENROL_SERVER_NAME, station.cert_der()).unwrap();
        assert!(served(lanterne_wire::ENROL_SERVER_NAME, https.cert_der()).is_err());
        assert!(served("salle12.lycee.local", station.cert_der()).is_err());
    }

    #[test]
    fn station_cert_ignores_what_the_csr_asks_for() {
        let dir = tempfile::tempdir().unwrap();
        let ca = StationCa::load_or_create(dir.path(), "Salle 12").unwrap();
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
    fn station_certificates_last_the_configured_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let ca = StationCa::load_or_create(dir.path(), "S")
            .unwrap()
            .with_station_cert_days(182);
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let (pem, _) = ca.sign_station_csr(&csr, 1).unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let left = cert.validity().not_after.timestamp() - now;
        assert!((left - 182 * 86_400).abs() < 60, "{left}");
        // A fresh certificate is offered renewal after half its lifetime, not before.
        let due = ca.renewal_due_in(&der).unwrap().as_secs() as i64;
        assert!((due - 91 * 86_400).abs() < 60, "{due}");
    }

    #[test]
    fn renewal_is_due_after_half_the_lifetime_or_at_once_for_longer_certificates() {
        let day = 86_400;
        let life = Duration::from_secs(182 * day as u64);
        let now = 1_700_000_000;
        // Fresh: due in 91 days.
        assert_eq!(
            renewal_due_in(now + 182 * day, now, life),
            Duration::from_secs(91 * day as u64)
        );
        // Less than half left, or already expired: now.
        assert_eq!(renewal_due_in(now + 90 * day, now, life), Duration::ZERO);
        assert_eq!(renewal_due_in(now - day, now, life), Duration::ZERO);
        // A ten-year certificate from an earlier version, or one issued before the lifetime
        // was shortened: now.
        assert_eq!(renewal_due_in(now + 3650 * day, now, life), Duration::ZERO);
        assert_eq!(renewal_due_in(now + 201 * day, now, life), Duration::ZERO);
        // A little over the lifetime (the clock moved) is still a fresh certificate.
        assert!(renewal_due_in(now + 190 * day, now, life) > Duration::ZERO);
    }

    #[test]
    fn garbage_csr_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = StationCa::load_or_create(dir.path(), "Salle 12").unwrap();
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
