//! Station enrolment: a station sends its CSR with a one-time code and gets its certificate.

use super::*;

// ---- enrolment ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub code: String,
    pub csr_pem: String,
    pub hostname: String,
    pub mac: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct EnrolResponse {
    pub station_id: u32,
    pub name: String,
    pub cert_pem: String,
    pub ca_pem: String,
    pub station_link_port: u16,
}

pub(super) fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

pub(super) async fn enrol(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<EnrolRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<EnrolResponse>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    // Bad codes count like bad passwords, per address (a code is a secret to guess too).
    let attempt = match state.login_gate.begin(peer.ip(), "#enrol", Instant::now()) {
        Ok(a) => a,
        Err(login_gate::Refused::LockedOut(left)) => {
            return Err(ApiError::TooManyRequests(format!(
                "too many bad enrolment codes from {}; wait {} s",
                peer.ip(),
                left.as_secs().max(1)
            )))
        }
        Err(login_gate::Refused::Busy) => {
            return Err(ApiError::TooManyRequests(
                "an enrolment from this address is already being checked; try again".into(),
            ))
        }
    };
    let hostname: String = req
        .hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect::<String>()
        .to_ascii_lowercase();
    if hostname.is_empty() {
        return Err(ApiError::BadRequest(
            "'hostname' must contain letters or digits".into(),
        ));
    }
    let mac = match req.mac.as_deref() {
        Some(m) if valid_mac(m) => Some(m.to_ascii_lowercase()),
        Some(m) => {
            return Err(ApiError::BadRequest(format!(
                "'mac' must look like aa:bb:cc:dd:ee:ff, got '{}'",
                m.chars().take(32).collect::<String>()
            )))
        }
        None => None,
    };
    let ca = state.ca.clone();
    let now_us = lanterne_wire::now_us() as i64;
    let code = req.code.clone();
    let csr = req.csr_pem.clone();
    let outcome = state
        .store
        .run(move |c| {
            let tx = c.unchecked_transaction()?;
            let name = store::unique_station_name(&tx, &hostname)?;
            let id = store::insert_station(&tx, &name, &hostname, mac.as_deref(), now_us)?;
            match store::redeem_enrol_code(&tx, &code, now_us, id)? {
                Redeem::Ok => {}
                other => return Ok(Err(other)),
            }
            let (cert_pem, fp) = match ca.sign_station_csr(&csr, id) {
                Ok(x) => x,
                Err(e) => return Ok(Ok(Err(e.to_string()))),
            };
            store::finish_station(&tx, id, &fp)?;
            tx.commit()?;
            Ok(Ok(Ok((id, name, hostname, mac, cert_pem, fp))))
        })
        .await?;
    let (id, name, hostname, mac, cert_pem, fp) = match outcome {
        Err(redeem) => {
            attempt.failed();
            let why = match redeem {
                Redeem::Unknown => "unknown enrolment code",
                Redeem::Expired => "this enrolment code has expired",
                Redeem::AlreadyUsed => "this enrolment code was already used",
                Redeem::Ok => unreachable!("Ok is not an error"),
            };
            state
                .audit
                .record(
                    crate::audit::Source::Anonymous(peer.ip()),
                    crate::audit::Entry {
                        actor: &format!("station@{}", peer.ip()),
                        action: "enrol",
                        target: &req.hostname,
                        result: "refused",
                        detail: why,
                    },
                )
                .await;
            return Err(ApiError::Forbidden(why.into()));
        }
        Ok(Err(bad_csr)) => {
            attempt.not_a_failure();
            return Err(ApiError::BadRequest(bad_csr));
        }
        Ok(Ok(x)) => {
            attempt.succeeded();
            x
        }
    };
    info!(station = %name, id, %peer, "station enrolled");
    state
        .audit
        .account(
            &format!("station@{}", peer.ip()),
            "enrol",
            &name,
            "ok",
            &fp[..16],
        )
        .await;
    state
        .room
        .enrolled(store::StationRow {
            id,
            name: name.clone(),
            hostname,
            mac,
            cert_fingerprint: fp,
        })
        .await;
    Ok(Json(EnrolResponse {
        station_id: id,
        name,
        cert_pem,
        ca_pem: state.ca.cert_pem().to_string(),
        station_link_port: state.station_link_port,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_validation() {
        assert!(valid_mac("aa:bb:cc:dd:ee:ff"));
        assert!(valid_mac("AA:01:cc:dd:ee:ff"));
        assert!(!valid_mac("aa:bb:cc:dd:ee"));
        assert!(!valid_mac("aa:bb:cc:dd:ee:fg"));
        assert!(!valid_mac("aabb.ccdd.eeff"));
    }
}
