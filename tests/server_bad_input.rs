//! Bad input of every kind gets its documented answer, and the server keeps serving.
//!
//! | input | answer |
//! |---|---|
//! | body not JSON at all, empty body | 400 plain |
//! | JSON that is not a usable review (truncated, wrong apiVersion/kind, no request, no uid) | AdmissionReview `allowed: false`, code 400, uid when found |
//! | object null / not an object / fields of the wrong type / nested too deep | enforce: `allowed: false`, code 400, naming the field |
//! | DELETE, CONNECT, subresources, kinds pidone does not handle, unchanged templates | allowed untouched |
//! | wrong or missing Content-Type | 415 plain |
//! | body over 8 MiB | 413 plain (read and discarded up to 16 MiB so the client sees it) |
//! | GET on a POST route | 405 plain; unknown path or mode: 404 plain |
//! | headers not complete within the header read timeout | connection closed |
//! | plain HTTP on the TLS port | no HTTP answer, connection closed |
//! | TLS without SNI | served with the one certificate |

mod support;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{ApiServer, Options, TestServer, review};

#[derive(Debug)]
enum Expect {
    /// A plain-text HTTP error.
    Plain(u16),
    /// An AdmissionReview denial with code 400 and this uid, whose message contains the text.
    Invalid {
        uid: &'static str,
        says: &'static str,
    },
    /// Allowed, no warnings, no patch.
    Untouched,
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    expect: Expect,
}

fn pod() -> Value {
    support::realistic_pod()
}

fn with_uid(mut r: Value, uid: &str) -> Value {
    r["request"]["uid"] = json!(uid);
    r
}

fn json_case(name: &'static str, body: Value, expect: Expect) -> Case {
    Case {
        name,
        method: "POST",
        path: "/validate",
        content_type: Some("application/json"),
        body: support::wire(&body),
        expect,
    }
}

fn cases() -> Vec<Case> {
    let good = with_uid(review("CREATE", &pod(), None), "u-good");
    let good_bytes = support::wire(&good);
    let mut cases = vec![
        Case {
            name: "not JSON",
            method: "POST",
            path: "/validate",
            content_type: Some("application/json"),
            body: b"this is not json".to_vec(),
            expect: Expect::Plain(400),
        },
        Case {
            name: "empty body",
            method: "POST",
            path: "/mutate",
            content_type: Some("application/json"),
            body: Vec::new(),
            expect: Expect::Plain(400),
        },
        Case {
            name: "truncated JSON",
            method: "POST",
            path: "/validate",
            content_type: Some("application/json"),
            body: good_bytes[..good_bytes.len() / 2].to_vec(),
            expect: Expect::Invalid {
                uid: "u-good",
                says: "EOF",
            },
        },
        Case {
            name: "wrong content type",
            method: "POST",
            path: "/validate",
            content_type: Some("application/yaml"),
            body: good_bytes.clone(),
            expect: Expect::Plain(415),
        },
        Case {
            name: "no content type",
            method: "POST",
            path: "/validate",
            content_type: None,
            body: good_bytes.clone(),
            expect: Expect::Plain(415),
        },
        Case {
            name: "GET on a POST route",
            method: "GET",
            path: "/validate",
            content_type: None,
            body: Vec::new(),
            expect: Expect::Plain(405),
        },
        Case {
            name: "PUT on a mode route",
            method: "PUT",
            path: "/mutate/audit",
            content_type: Some("application/json"),
            body: good_bytes.clone(),
            expect: Expect::Plain(405),
        },
        Case {
            name: "unknown path",
            method: "POST",
            path: "/admit",
            content_type: Some("application/json"),
            body: good_bytes.clone(),
            expect: Expect::Plain(404),
        },
        Case {
            name: "unknown mode",
            method: "POST",
            path: "/validate/strict",
            content_type: Some("application/json"),
            body: good_bytes.clone(),
            expect: Expect::Plain(404),
        },
    ];

    let mut wrong_version = good.clone();
    wrong_version["apiVersion"] = json!("admission.k8s.io/v1beta1");
    cases.push(json_case(
        "wrong apiVersion",
        wrong_version,
        Expect::Invalid {
            uid: "u-good",
            says: "v1beta1",
        },
    ));
    let mut wrong_kind = good.clone();
    wrong_kind["kind"] = json!("Pod");
    cases.push(json_case(
        "wrong kind",
        wrong_kind,
        Expect::Invalid {
            uid: "u-good",
            says: "kind AdmissionReview",
        },
    ));
    cases.push(json_case(
        "missing request",
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
        Expect::Invalid {
            uid: "",
            says: "no request",
        },
    ));
    let mut no_uid = good.clone();
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    cases.push(json_case(
        "missing uid",
        no_uid,
        Expect::Invalid {
            uid: "",
            says: "uid",
        },
    ));
    let mut uid_number = good.clone();
    uid_number["request"]["uid"] = json!(42);
    cases.push(json_case(
        "uid not a string",
        uid_number,
        Expect::Invalid {
            uid: "",
            says: "invalid type",
        },
    ));
    cases.push(json_case(
        "a JSON array",
        json!([1, 2, 3]),
        Expect::Invalid {
            uid: "",
            says: "not a valid AdmissionReview",
        },
    ));
    let mut null_object = with_uid(good.clone(), "u-null");
    null_object["request"]["object"] = Value::Null;
    cases.push(json_case(
        "object null on CREATE",
        null_object,
        Expect::Invalid {
            uid: "u-null",
            says: "request.object is missing or null",
        },
    ));
    let mut string_object = with_uid(good.clone(), "u-string");
    string_object["request"]["object"] = json!("a pod, honestly");
    cases.push(json_case(
        "object of the wrong type",
        string_object,
        Expect::Invalid {
            uid: "u-string",
            says: "not a JSON object",
        },
    ));
    let mut string_command = with_uid(good.clone(), "u-command");
    string_command["request"]["object"]["spec"]["containers"][0]["command"] = json!("sh -c 'app'");
    cases.push(json_case(
        "container command a string",
        string_command,
        Expect::Invalid {
            uid: "u-command",
            says: "/spec/containers/0/command: expected an array of strings, found a string",
        },
    ));
    let mut spec_array = with_uid(good.clone(), "u-spec");
    spec_array["request"]["object"]["spec"] = json!([]);
    cases.push(json_case(
        "pod spec an array",
        spec_array,
        Expect::Invalid {
            uid: "u-spec",
            says: "/spec: expected an object",
        },
    ));
    let deep = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u-deep","kind":{{"group":"","version":"v1","kind":"Pod"}},"operation":"CREATE","namespace":"x","object":{{"kind":"Pod","spec":{}{}}}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    cases.push(Case {
        name: "deep JSON nesting",
        method: "POST",
        path: "/validate",
        content_type: Some("application/json"),
        body: deep.into_bytes(),
        expect: Expect::Invalid {
            uid: "u-deep",
            says: "recursion limit",
        },
    });
    let mut bad_utf8 = support::wire(&with_uid(good.clone(), "u-utf8"));
    let at = bad_utf8.windows(6).position(|w| w == b"\"shop\"").unwrap();
    bad_utf8[at + 1] = 0xff;
    cases.push(Case {
        name: "invalid UTF-8 in a string",
        method: "POST",
        path: "/validate",
        content_type: Some("application/json; charset=utf-8"),
        body: bad_utf8,
        expect: Expect::Invalid {
            uid: "u-utf8",
            says: "invalid unicode",
        },
    });

    // Allowed untouched.
    cases.push(json_case(
        "DELETE",
        review("DELETE", &pod(), None),
        Expect::Untouched,
    ));
    let mut connect = review("CONNECT", &pod(), None);
    connect["request"]["object"] = Value::Null;
    connect["request"]["subResource"] = json!("exec");
    cases.push(json_case("CONNECT", connect, Expect::Untouched));
    let mut status = review("UPDATE", &pod(), Some(&pod()));
    status["request"]["subResource"] = json!("status");
    status["request"]["requestSubResource"] = json!("status");
    cases.push(json_case("subresource status", status, Expect::Untouched));
    let mut ephemeral = review("UPDATE", &pod(), Some(&pod()));
    ephemeral["request"]["subResource"] = json!("ephemeralcontainers");
    cases.push(json_case(
        "subresource ephemeralcontainers",
        ephemeral,
        Expect::Untouched,
    ));
    cases.push(json_case(
        "Pod UPDATE",
        review("UPDATE", &pod(), Some(&pod())),
        Expect::Untouched,
    ));
    let deployment = support::fixture_objects()
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let mut scaled = deployment.clone();
    scaled["spec"]["replicas"] = json!(7);
    cases.push(json_case(
        "UPDATE with unchanged template",
        review("UPDATE", &scaled, Some(&deployment)),
        Expect::Untouched,
    ));
    cases.push(json_case(
        "a kind pidone does not handle",
        review(
            "CREATE",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}, "data": {"a": "b"}}),
            None,
        ),
        Expect::Untouched,
    ));
    let mut system = pod();
    system["metadata"]["namespace"] = json!("kube-system");
    cases.push(json_case(
        "exempt namespace",
        review("CREATE", &system, None),
        Expect::Untouched,
    ));
    cases
}

async fn send(api: &ApiServer, case: &Case) -> reqwest::Result<reqwest::Response> {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut req = api
        .http
        .request(method, api.url(case.path))
        .header("Accept", "application/json, */*")
        .body(case.body.clone());
    if let Some(ct) = case.content_type {
        req = req.header("Content-Type", ct);
    }
    req.send().await
}

/// A good review still gets a good answer.
async fn assert_still_serving(api: &ApiServer, after: &str) {
    let r = review("CREATE", &pod(), None);
    let v = api
        .review("/validate", &r)
        .await
        .unwrap_or_else(|e| panic!("after {after}: {e}"));
    assert_eq!(v["allowed"], true, "after {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_input_matrix() {
    let server = TestServer::start().await;
    let api = server.apiserver();
    let cases = cases();
    assert!(cases.len() >= 20);
    for case in &cases {
        let res = send(&api, case)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = res.bytes().await.unwrap();
        match &case.expect {
            Expect::Plain(code) => {
                assert_eq!(status, *code, "{}", case.name);
                assert!(content_type.starts_with("text/plain"), "{}", case.name);
                assert!(!body.is_empty(), "{}: a plain message", case.name);
            }
            Expect::Invalid { uid, says } => {
                assert_eq!(status, 200, "{}", case.name);
                let request = json!({"request": {"uid": uid}});
                let response = support::validate_response(&request, &body, false)
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                assert_eq!(response["allowed"], false, "{}", case.name);
                assert_eq!(response["status"]["code"], 400, "{}", case.name);
                let message = response["status"]["message"].as_str().unwrap();
                assert!(message.contains(says), "{}: {message}", case.name);
            }
            Expect::Untouched => {
                assert_eq!(status, 200, "{}", case.name);
                let request: Value = serde_json::from_slice(&case.body).unwrap();
                let response = support::validate_response(&request, &body, false)
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                assert_eq!(
                    response,
                    json!({"uid": request["request"]["uid"], "allowed": true}),
                    "{}",
                    case.name
                );
            }
        }
        assert_still_serving(&api, case.name).await;
    }
    let metrics = server.metrics().await;
    assert!(metrics.contains(r#"result="invalid""#), "{metrics}");
    assert!(metrics.contains(r#"result="rejected""#), "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_objects_in_audit_mode_are_allowed_with_a_warning() {
    let server = TestServer::start_with(Options {
        config: "mode: audit\n".into(),
        ..Default::default()
    })
    .await;
    let api = server.apiserver();
    let mut r = review("CREATE", &pod(), None);
    r["request"]["object"]["spec"]["containers"][0]["command"] = json!("sh -c app");
    let v = api.review("/validate", &r).await.unwrap();
    assert_eq!(v["allowed"], true);
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("could not analyse")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_8_mib_gets_413() {
    let server = TestServer::start().await;
    let api = server.apiserver();
    let mut r = review("CREATE", &pod(), None);
    r["request"]["object"]["metadata"]["annotations"]["big"] = json!("x".repeat(9 << 20));
    let res = api
        .post("/validate", "application/json", support::wire(&r))
        .await
        .expect("the 413 arrives before the server stops reading");
    assert_eq!(res.status(), 413);
    assert!(res.text().await.unwrap().contains("8 MiB"));
    // Just under the limit is read and answered.
    r["request"]["object"]["metadata"]["annotations"]["big"] = json!("x".repeat(7 << 20));
    let v = api.review("/validate", &r).await.unwrap();
    assert_eq!(v["allowed"], true);
    assert_still_serving(&api, "huge body").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_by_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(Options {
        header_read_timeout: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let ca = server.pki.ca_pem();
    let mut slow = support::raw_tls(server.addr, &ca, true).await.unwrap();
    slow.write_all(b"POST /validate HTTP/1.1\r\nHost: pidone.pidone.svc\r\nContent-Type: app")
        .await
        .unwrap();
    slow.flush().await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("the server closes the connection")
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A client that connects and never finishes the TLS handshake is cut off too.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("the server drops a silent connection")
        .unwrap_or(0);
    assert_eq!(n, 0);

    let api = ApiServer::new(&ca, server.addr);
    assert_still_serving(&api, "slow headers").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_tls_port_gets_no_http_answer() {
    let server = TestServer::start().await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let answer = support::raw_request(
        &mut tcp,
        b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await
    .unwrap();
    assert!(!answer.starts_with("HTTP/"), "{answer}");
    assert_still_serving(&server.apiserver(), "plain HTTP").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_sni_is_served_with_the_one_certificate() {
    let server = TestServer::start().await;
    let mut tls = support::raw_tls(server.addr, &server.pki.ca_pem(), false)
        .await
        .expect("handshake without SNI");
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    assert_eq!(leaf, server.pair.cert_der);
    let r = review("CREATE", &pod(), None);
    let body = support::wire(&r);
    let mut request = format!(
        "POST /validate?timeout=10s HTTP/1.1\r\nHost: pidone.pidone.svc\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let answer = support::raw_request(&mut tls, &request).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    support::validate_response(&r, json.as_bytes(), false).unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_outlives_the_header_timeout_until_the_idle_timeout() {
    // The apiserver keeps idle connections up to 90 s and reuses them: an idle connection must
    // not be closed by the (short) header read timeout, only by the (longer) idle timeout.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(Options {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let ca = server.pki.ca_pem();
    let mut conn = support::raw_tls(server.addr, &ca, true).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: pidone.pidone.svc\r\n\r\n";
    let mut buf = [0u8; 1024];
    for round in 0..2 {
        conn.write_all(request).await.unwrap();
        conn.flush().await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 200"), "round {round}: {text}");
        // Idle for three header timeouts, still well within the idle timeout.
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    // Past the idle timeout the server closes the connection.
    let started = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("the server closes an idle connection")
        .unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf[..n]));
    assert!(started.elapsed() < Duration::from_millis(1500));

    // A slow head on a kept-alive connection is still cut at the header timeout.
    let mut slow = support::raw_tls(server.addr, &ca, true).await.unwrap();
    slow.write_all(request).await.unwrap();
    let n = slow.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    slow.write_all(b"POST /validate HTTP/1.1\r\nHost: pidone")
        .await
        .unwrap();
    slow.flush().await.unwrap();
    let started = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("the server closes a slow head")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1200),
        "{took:?}"
    );
    server.stop().await;
}
