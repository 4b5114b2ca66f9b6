//! P7: HTTPS only (plain HTTP just redirects), and a room link for tablets that an admin can
//! regenerate, which kills the old one at once.

use lanterne_scenarios::BoxProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn plain_http_only_redirects_to_https() {
    let b = BoxProcess::start_with_config(
        "[room]\nname = \"Salle 12\"\n[network]\nhttp_redirect = \"127.0.0.1:0\"\n[panel]\nbackend = \"simulated\"\n",
    )
    .await
    .unwrap();
    let addr = b.ready.http_redirect.expect("the redirect listener is up");
    let https_port = b.ready.https_url.rsplit(':').next().unwrap().to_string();
    for path in ["/room", "/api/room", "/login?x=1"] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: lanterne-salle12.local\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains(&format!(
                "location: https://lanterne-salle12.local:{https_port}{path}\r\n"
            )),
            "{answer}"
        );
        assert!(
            !answer.contains("{\""),
            "no content over plain HTTP: {answer}"
        );
    }
}

#[tokio::test]
async fn regenerating_the_room_link_invalidates_the_old_one_at_once() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let origin = https.origin();
    let admin = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let auth = [("cookie", admin.as_str()), ("origin", origin.as_str())];
    let regenerate = || https.request("POST", "/api/room/link", None, &auth);

    let first = regenerate().await.unwrap().json();
    let url = first["url"].as_str().unwrap().to_string();
    assert!(first["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
    let res = https.request("GET", &path, None, &[]).await.unwrap();
    assert_eq!(res.status, 303, "the current link leads to the login");
    assert_eq!(res.headers["location"], "/login");

    let second = regenerate().await.unwrap().json();
    assert_ne!(second["url"], first["url"]);
    let res = https.request("GET", &path, None, &[]).await.unwrap();
    assert_eq!(res.status, 404, "the old link is dead");
    assert!(res.json()["error"]
        .as_str()
        .unwrap()
        .contains("no longer valid"));
    let new_path = second["url"]
        .as_str()
        .unwrap()
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap();
    assert_eq!(
        https
            .request("GET", &new_path, None, &[])
            .await
            .unwrap()
            .status,
        303
    );
}
