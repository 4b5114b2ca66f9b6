//! A station's identity: its private key, the certificate the box signed for it, the box's
//! station CA it pins, and where the box is. Kept in the agent's data directory, key readable
//! by the agent only.
//!
//! The certificate is renewed over the link ([`Identity::renewal_request`],
//! [`PendingRenewal::complete`]): a new key and certificate replace the old pair together,
//! even across a crash or power cut (see [`commit_renewal`]).

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
    #[error("cannot make a key or certificate request: {0}")]
    Key(#[from] rcgen::Error),
    #[error("the renewed certificate from the box is not usable: {0}")]
    BadRenewal(String),
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
    /// Where it was loaded from (renewals are written there).
    dir: PathBuf,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    ca: CertificateDer<'static>,
}

const META: &str = "station.json";
const KEY: &str = "station.key.pem";
const CERT: &str = "station.cert.pem";
const CA: &str = "box-ca.pem";
/// A renewed key and certificate on their way in (see [`commit_renewal`]).
const KEY_NEXT: &str = "station.key.pem.next";
const CERT_NEXT: &str = "station.cert.pem.next";

impl Identity {
    pub fn is_enrolled(dir: &Path) -> bool {
        [META, KEY, CERT, CA].iter().all(|f| dir.join(f).exists())
    }

    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        let meta_path = dir.join(META);
        if !Self::is_enrolled(dir) {
            return Err(IdentityError::NotEnrolled(meta_path));
        }
        finish_renewal(dir)?;
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
            dir: dir.to_path_buf(),
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
        crate::platform::secure_dir(dir).map_err(|source| IdentityError::Io {
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

    /// The certificate this station connects with (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// A new key pair and a request to certify it, for the box's renewal offer. Nothing is
    /// written until [`PendingRenewal::complete`].
    pub fn renewal_request(&self) -> Result<PendingRenewal, IdentityError> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, self.enrolment.name.as_str());
        let csr_pem = params.serialize_request(&key)?.pem()?;
        Ok(PendingRenewal { key, csr_pem })
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

/// A renewal under way: the new key, kept in memory until the box's certificate for it comes.
pub struct PendingRenewal {
    key: rcgen::KeyPair,
    /// What goes to the box in `Control::CertificateRequest`.
    pub csr_pem: String,
}

impl PendingRenewal {
    /// Checks the certificate the box sent (bounded PEM, signed by the pinned CA, valid now,
    /// for client authentication, and for this renewal's key), stores the new key and
    /// certificate in place of the old ones, and returns the identity to connect with next.
    pub fn complete(self, current: &Identity, cert_pem: &str) -> Result<Identity, IdentityError> {
        let bad = |e: String| IdentityError::BadRenewal(e);
        lanterne_wire::check_pem(cert_pem, "CERTIFICATE").map_err(bad)?;
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| bad(format!("no PEM certificate: {e}")))?;
        let mut roots = RootCertStore::empty();
        roots.add(current.ca.clone())?;
        let provider = provider();
        rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| bad(e.to_string()))?
        .verify_client_cert(&cert, &[], UnixTime::now())
        .map_err(|e| bad(format!("not a client certificate from the pinned CA: {e}")))?;
        let key_der = PrivateKeyDer::Pkcs8(self.key.serialize_der().into());
        rustls::sign::CertifiedKey::from_der(vec![cert], key_der, &provider)
            .and_then(|k| k.keys_match())
            .map_err(|e| bad(format!("not for the key this station asked for: {e}")))?;
        commit_renewal(&current.dir, &self.key.serialize_pem(), cert_pem)?;
        Identity::load(&current.dir)
    }
}

/// Replaces the key and certificate together. The new pair is written beside the old one
/// first (`*.next`), the certificate last and by rename, so its presence means "both
/// complete"; then both are renamed over the old files. [`finish_renewal`] completes or
/// drops an interrupted renewal at the next load, so the station never holds a key and a
/// certificate that do not match.
fn commit_renewal(dir: &Path, key_pem: &str, cert_pem: &str) -> Result<(), IdentityError> {
    // A file left by someone else could keep looser permissions than the ones we create.
    let _ = fs::remove_file(dir.join(KEY_NEXT));
    write(&dir.join(KEY_NEXT), key_pem.as_bytes(), true)?;
    let tmp = dir.join(format!("{CERT_NEXT}.tmp"));
    write(&tmp, cert_pem.as_bytes(), false)?;
    rename(&tmp, &dir.join(CERT_NEXT))?;
    sync_dir(dir)?;
    finish_renewal(dir)
}

/// Completes a renewal whose new pair was fully written, or drops one that was not.
fn finish_renewal(dir: &Path) -> Result<(), IdentityError> {
    let (key_next, cert_next) = (dir.join(KEY_NEXT), dir.join(CERT_NEXT));
    let _ = fs::remove_file(dir.join(format!("{CERT_NEXT}.tmp")));
    if cert_next.exists() {
        // The key may already have moved if the previous attempt stopped between the renames.
        if key_next.exists() {
            rename(&key_next, &dir.join(KEY))?;
        }
        rename(&cert_next, &dir.join(CERT))?;
        sync_dir(dir)?;
    } else if key_next.exists() {
        // The certificate never arrived on disk: the old pair is still the valid one.
        fs::remove_file(&key_next).map_err(|source| IdentityError::Io {
            path: key_next,
            source,
        })?;
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<(), IdentityError> {
    fs::rename(from, to).map_err(|source| IdentityError::Io {
        path: from.into(),
        source,
    })
}

fn sync_dir(dir: &Path) -> Result<(), IdentityError> {
    crate::platform::sync_dir(dir).map_err(|source| IdentityError::Io {
        path: dir.into(),
        source,
    })
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
    crate::platform::write_file(path, data, private).map_err(|source| IdentityError::Io {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA standing in for the box's station CA.
    struct TestCa {
        issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
        pem: String,
    }

    impl TestCa {
        fn new() -> Self {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "test station CA");
            let pem = p.self_signed(&key).unwrap().pem();
            TestCa {
                issuer: rcgen::Issuer::new(p, key),
                pem,
            }
        }

        fn sign(&self, public: &impl rcgen::PublicKeyData) -> String {
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            p.signed_by(public, &self.issuer).unwrap().pem()
        }

        fn sign_csr(&self, csr_pem: &str) -> String {
            let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).unwrap();
            self.sign(&csr.public_key)
        }
    }

    fn enrolled(dir: &Path, ca: &TestCa) -> Identity {
        let key = rcgen::KeyPair::generate().unwrap();
        let enrolment = Enrolment {
            station_id: 4,
            name: "poste-04".into(),
            link: "127.0.0.1:7443".into(),
        };
        Identity::save(
            dir,
            &enrolment,
            &key.serialize_pem(),
            &ca.sign(&key),
            &ca.pem,
        )
        .unwrap();
        Identity::load(dir).unwrap()
    }

    fn files(dir: &Path) -> (String, String) {
        (
            fs::read_to_string(dir.join(KEY)).unwrap(),
            fs::read_to_string(dir.join(CERT)).unwrap(),
        )
    }

    #[test]
    fn a_renewal_replaces_key_and_certificate_together() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let id = enrolled(dir.path(), &ca);
        let before = files(dir.path());
        let pending = id.renewal_request().unwrap();
        let cert_pem = ca.sign_csr(&pending.csr_pem);
        let renewed = pending.complete(&id, &cert_pem).unwrap();
        let after = files(dir.path());
        assert_ne!(after.0, before.0, "a new key");
        assert_eq!(after.1, cert_pem);
        assert_ne!(renewed.cert_der(), id.cert_der());
        assert_eq!(renewed.enrolment, id.enrolment);
        // The pair matches: a TLS client can be built from it, now and after a reload.
        renewed.link_tls().unwrap();
        Identity::load(dir.path()).unwrap().link_tls().unwrap();
        assert!(!dir.path().join(KEY_NEXT).exists() && !dir.path().join(CERT_NEXT).exists());
        // The key is private (on Windows, the folder's ACL decides: not checked here).
        #[cfg(unix)]
        {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &fs::metadata(dir.path().join(KEY)).unwrap().permissions(),
            );
            assert_eq!(mode & 0o077, 0);
        }
    }

    #[test]
    fn a_certificate_for_another_key_or_from_another_ca_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let id = enrolled(dir.path(), &ca);
        let before = files(dir.path());

        let pending = id.renewal_request().unwrap();
        let other_key = rcgen::KeyPair::generate().unwrap();
        let Err(err) = pending.complete(&id, &ca.sign(&other_key)) else {
            panic!("a certificate for another key was accepted")
        };
        assert!(matches!(err, IdentityError::BadRenewal(_)), "{err}");

        let pending = id.renewal_request().unwrap();
        let stranger = TestCa::new().sign_csr(&pending.csr_pem);
        let Err(err) = pending.complete(&id, &stranger) else {
            panic!("a certificate from another CA was accepted")
        };
        assert!(matches!(err, IdentityError::BadRenewal(_)), "{err}");

        let pending = id.renewal_request().unwrap();
        let Err(err) = pending.complete(&id, "not a certificate") else {
            panic!("garbage was accepted")
        };
        assert!(matches!(err, IdentityError::BadRenewal(_)), "{err}");

        assert_eq!(files(dir.path()), before);
        Identity::load(dir.path()).unwrap().link_tls().unwrap();
    }

    /// A renewal cut short by a crash or power cut: at the next start the station holds the
    /// old pair or the new pair, never a mix.
    #[test]
    fn an_interrupted_renewal_is_finished_or_dropped_at_the_next_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let id = enrolled(dir.path(), &ca);
        let old = files(dir.path());
        let new_key = rcgen::KeyPair::generate().unwrap();
        let new = (new_key.serialize_pem(), ca.sign(&new_key));

        // Stopped before the certificate was complete: the old pair stays.
        fs::write(dir.path().join(KEY_NEXT), &new.0).unwrap();
        fs::write(dir.path().join(format!("{CERT_NEXT}.tmp")), "-----BEGIN").unwrap();
        Identity::load(dir.path()).unwrap().link_tls().unwrap();
        assert_eq!(files(dir.path()), old);
        assert!(!dir.path().join(KEY_NEXT).exists());

        // Stopped once both were written: the new pair is taken.
        fs::write(dir.path().join(KEY_NEXT), &new.0).unwrap();
        fs::write(dir.path().join(CERT_NEXT), &new.1).unwrap();
        Identity::load(dir.path()).unwrap().link_tls().unwrap();
        assert_eq!(files(dir.path()), new);

        // Stopped between the two renames (the key already moved).
        let newer_key = rcgen::KeyPair::generate().unwrap();
        let newer = (newer_key.serialize_pem(), ca.sign(&newer_key));
        fs::write(dir.path().join(KEY), &newer.0).unwrap();
        fs::write(dir.path().join(CERT_NEXT), &newer.1).unwrap();
        Identity::load(dir.path()).unwrap().link_tls().unwrap();
        assert_eq!(files(dir.path()), newer);
        drop(id);
    }
}
