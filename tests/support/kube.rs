//! A fake Kubernetes API server, standing in for an EKS control plane.
//!
//! No real apiserver can be installed here, so this is a small TLS server
//! (hyper 1 + tokio-rustls with the aws-lc-rs provider, the crate's only
//! crypto provider) that does the three things the action needs from one:
//!
//! - **authentication as EKS does it**: every request must carry a bearer
//!   token `k8s-aws-v1.<base64url presigned STS GetCallerIdentity URL>`.
//!   aws-iam-authenticator checks the URL's shape and then lets STS verify
//!   the signature; here [`verify_eks_token`] does both, recomputing the
//!   SigV4 query signature with the known test credentials (independently
//!   of the `aws-sigv4` crate the action signs with). Anything else is a 401
//!   Kubernetes `Status`;
//! - **objects**: a `GET` of a configured path answers its JSON (Flux and
//!   Flagger lists later), anything unknown a 404 `Status`;
//! - **the service proxy**: `/api/v1/namespaces/{ns}/services/{svc}/proxy/…`
//!   of the one configured Service is forwarded to a real Pushgateway, raw
//!   path bytes and all.
//!
//! The CA and the server certificate (for `127.0.0.1` and `localhost`) are
//! generated per instance, so every test trusts only its own server, and a
//! client that skipped verification against the cluster's CA would not be
//! caught by a shared, widely trusted certificate.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use super::aws::{
    AwsCredentials, EMPTY_SHA256, aws_sigv4_sign, canonical_query, check_skew,
    moto_issued_credentials, query_pairs, sigv4_encode, sigv4_signature,
};
use super::server::relay;

/// The token prefix aws-iam-authenticator (and `aws eks get-token`) use.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// What a [`FakeApiServer`] serves and whom it lets in.
#[derive(Debug, Clone)]
pub struct FakeApiConfig {
    /// EKS cluster name: the `x-k8s-aws-id` header value a token must sign.
    pub cluster_name: String,
    /// Region a token must be for (`sts.<region>.amazonaws.com`, scope).
    pub region: String,
    /// Credentials whose tokens are accepted.
    pub credentials: Vec<AwsCredentials>,
    /// Also accept tokens signed with credentials this moto's STS handed
    /// out (looked up in its `/moto-api/data.json` on each check): for
    /// tests where the action assumes a role through moto and so signs
    /// with keys the test cannot know beforehand.
    pub moto_url: Option<String>,
    /// Where the service proxy forwards to (`http://127.0.0.1:PORT`). None:
    /// proxy calls get 503, as for a Service without endpoints.
    pub pushgateway_url: Option<String>,
    /// The one proxied Service: (namespace, name, port). The action's
    /// default `pushgateway-service` is `observability/pushgateway:9091`.
    pub expect_service: (String, String, String),
    /// API path (no query) → JSON answered to a `GET` of it.
    pub objects: Vec<(String, Value)>,
    /// Answer 401 to every request, whatever the token (an EKS access entry
    /// or aws-auth mapping that is missing).
    pub reject_all_tokens: bool,
    /// Answer every service proxy request (of a token that passed) with this
    /// `Status` code, reason and message instead of forwarding it: the API
    /// server's own refusal, e.g. 403 when RBAC does not allow `services/proxy`.
    pub proxy_status: Option<(u16, String, String)>,
    /// Hold every request this long before answering: an API server (or a
    /// link to it) slower than the client's timeout.
    pub stall: Option<Duration>,
}

impl FakeApiConfig {
    /// A cluster `cluster_name` in `region` accepting tokens made with
    /// [`AwsCredentials::test`] or [`AwsCredentials::test_session`],
    /// proxying `observability/pushgateway:9091` nowhere yet, serving only
    /// `/version`.
    pub fn new(cluster_name: &str, region: &str) -> FakeApiConfig {
        FakeApiConfig {
            cluster_name: cluster_name.to_string(),
            region: region.to_string(),
            credentials: vec![AwsCredentials::test(), AwsCredentials::test_session()],
            moto_url: None,
            pushgateway_url: None,
            expect_service: (
                "observability".to_string(),
                "pushgateway".to_string(),
                "9091".to_string(),
            ),
            objects: vec![(
                "/version".to_string(),
                json!({
                    "major": "1", "minor": "31",
                    "gitVersion": "v1.31.4-eks-2d5f260",
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.22.10", "compiler": "gc", "platform": "linux/amd64"
                }),
            )],
            reject_all_tokens: false,
            proxy_status: None,
            stall: None,
        }
    }

    /// Forwards the service proxy to this Pushgateway.
    pub fn pushgateway(mut self, url: &str) -> Self {
        self.pushgateway_url = Some(url.to_string());
        self
    }

    /// Proxies `namespace/name:port` instead of the default Service.
    pub fn service(mut self, namespace: &str, name: &str, port: &str) -> Self {
        self.expect_service = (namespace.to_string(), name.to_string(), port.to_string());
        self
    }

    /// Accepts only tokens of these credentials.
    pub fn credentials(mut self, credentials: Vec<AwsCredentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Also accepts credentials issued by the moto at `url`.
    pub fn moto(mut self, url: &str) -> Self {
        self.moto_url = Some(url.to_string());
        self
    }

    /// Serves `value` at `path` (replacing an earlier one).
    pub fn object(mut self, path: &str, value: Value) -> Self {
        self.objects.retain(|(p, _)| p != path);
        self.objects.push((path.to_string(), value));
        self
    }

    /// Rejects every request with 401.
    pub fn reject_all_tokens(mut self) -> Self {
        self.reject_all_tokens = true;
        self
    }

    /// Answers the service proxy with a `Status` of `code` (see [`FakeApiConfig::proxy_status`]).
    pub fn refuse_proxy(mut self, code: u16, reason: &str, message: &str) -> Self {
        self.proxy_status = Some((code, reason.to_string(), message.to_string()));
        self
    }

    /// Holds every request for `delay` before answering.
    pub fn stall(mut self, delay: Duration) -> Self {
        self.stall = Some(delay);
        self
    }
}

/// One request as the fake API server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target exactly as sent (still percent-encoded).
    pub path_and_query: String,
    /// Whether the token was accepted.
    pub authorized: bool,
    /// Why the token was rejected (None when authorized), for failure messages.
    pub rejection: Option<String>,
    /// The bearer token sent, if any: a secret, so a test can assert that
    /// the action never printed it.
    pub token: Option<String>,
}

struct State {
    config: FakeApiConfig,
    objects: Mutex<BTreeMap<String, Value>>,
    requests: Mutex<Vec<RecordedRequest>>,
    upstream: reqwest::Client,
}

/// The fake API server; stops (its accept loop and every open connection)
/// when dropped.
pub struct FakeApiServer {
    url: String,
    ca_pem: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task: nothing keeps serving after the test.
        self.task.abort();
        // Like the services' logs: what the server saw explains most
        // failures of a test against it. Tokens are left out.
        if std::thread::panicking() {
            eprintln!("--- fake API server {} requests ---", self.url);
            for r in self.requests() {
                eprintln!(
                    "{} {} authorized={} {}",
                    r.method,
                    r.path_and_query,
                    r.authorized,
                    r.rejection.unwrap_or_default()
                );
            }
        }
    }
}

impl FakeApiServer {
    /// Generates a CA and a server certificate, binds `127.0.0.1:0` (the
    /// kernel picks a free port and we keep the socket, so no clash with a
    /// parallel test is possible) and serves until dropped. Ready on return.
    /// Must be called inside a Tokio runtime.
    pub async fn start(config: FakeApiConfig) -> FakeApiServer {
        let (ca_pem, tls) = tls_config();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let objects = config.objects.iter().cloned().collect();
        let state = Arc::new(State {
            config,
            objects: Mutex::new(objects),
            requests: Mutex::new(Vec::new()),
            upstream: super::process::http(),
        });
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let task = tokio::spawn(accept_loop(listener, acceptor, state.clone()));
        FakeApiServer {
            url: format!("https://127.0.0.1:{port}"),
            ca_pem,
            state,
            task,
        }
    }

    /// `https://127.0.0.1:PORT`: the cluster endpoint.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// PEM of this server's CA (what EKS returns, base64-encoded, as
    /// `certificateAuthority.data`).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Every request received so far, authorized or not, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().expect("requests lock").clone()
    }

    /// How many requests so far had `part` in their target (`"/proxy/"`,
    /// `"?limit="`).
    pub fn requests_to(&self, part: &str) -> usize {
        let requests = self.state.requests.lock().expect("requests lock");
        requests
            .iter()
            .filter(|r| r.path_and_query.contains(part))
            .count()
    }

    /// Serves `value` at `path` from now on (e.g. a Kustomization whose
    /// status changed between two runs).
    pub fn set_object(&self, path: &str, value: Value) {
        self.state
            .objects
            .lock()
            .expect("objects lock")
            .insert(path.to_string(), value);
    }

    /// A client that trusts only this server's CA, as the action's kube
    /// client must (no built-in roots, no proxy).
    pub fn client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA PEM");
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(10))
            .build()
            .expect("build reqwest client")
    }

    /// A valid token for this server's cluster made with `credentials` now
    /// (see [`presigned_eks_token`]).
    pub fn token(&self, credentials: &AwsCredentials) -> String {
        presigned_eks_token(
            &self.state.config.cluster_name,
            &self.state.config.region,
            credentials,
            SystemTime::now(),
        )
    }
}

/// A CA and a server certificate signed by it, for `127.0.0.1` and
/// `localhost`; ECDSA P-256 keys (quick to generate). Returns the CA PEM and
/// the rustls config, which offers HTTP/1.1 only over ALPN.
fn tls_config() -> (String, rustls::ServerConfig) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // EKS's cluster CA is called "kubernetes" too.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kubernetes");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).expect("server cert params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .expect("sign server cert");

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .expect("server cert and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_cert.pem(), config)
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        connections.spawn(async move {
            // A failed handshake (e.g. a client that does not trust our CA)
            // just ends the connection, as a real server's does.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

type Reply = Response<Full<Bytes>>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let method = req.method().as_str().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let rejection = authenticate(&state, &req).await.err();
    state
        .requests
        .lock()
        .expect("requests lock")
        .push(RecordedRequest {
            method: method.clone(),
            path_and_query: path_and_query.clone(),
            authorized: rejection.is_none(),
            rejection: rejection.clone(),
            token,
        });
    if let Some(delay) = state.config.stall {
        tokio::time::sleep(delay).await;
    }
    if rejection.is_some() {
        return Ok(status_reply(401, "Unauthorized", "Unauthorized", None));
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path_and_query.clone(), None),
    };
    if let Some(target) = proxy_target(&path) {
        if let Some((code, reason, message)) = &state.config.proxy_status {
            return Ok(status_reply(*code, reason, message, None));
        }
        return Ok(proxy(&state, req, target, query).await);
    }
    if method != "GET" {
        return Ok(status_reply(
            405,
            "MethodNotAllowed",
            &format!(
                "the server does not allow this method on the requested resource ({method} {path})"
            ),
            None,
        ));
    }
    let object = state
        .objects
        .lock()
        .expect("objects lock")
        .get(&path)
        .cloned();
    Ok(match object {
        // A configured `metav1.Status` is answered with its own code (a 403 for RBAC tests).
        Some(value) if value.get("kind").and_then(Value::as_str) == Some("Status") => {
            let code = value.get("code").and_then(Value::as_u64).unwrap_or(500) as u16;
            json_reply(code, &value)
        }
        Some(value) => json_reply(200, &value),
        None => status_reply(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        ),
    })
}

/// Checks the bearer token; `Err` says why it was refused.
async fn authenticate(state: &State, req: &Request<Incoming>) -> Result<(), String> {
    let config = &state.config;
    if config.reject_all_tokens {
        return Err("reject_all_tokens is set".to_string());
    }
    let header = req
        .headers()
        .get("authorization")
        .ok_or("no Authorization header")?
        .to_str()
        .map_err(|_| "Authorization is not ASCII")?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| format!("Authorization is not a bearer token: {header:.20}…"))?;
    let mut credentials = config.credentials.clone();
    if let Some(moto) = &config.moto_url {
        credentials.extend(moto_issued_credentials(moto).await);
    }
    verify_eks_token(
        token,
        &config.cluster_name,
        &config.region,
        &credentials,
        jiff::Timestamp::now(),
    )
}

/// The query parameters aws-iam-authenticator allows in a token's URL (it
/// rejects any other), in the order botocore writes them.
pub const ALLOWED_PARAMS: [&str; 9] = [
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
];

/// Verifies an EKS bearer token as aws-iam-authenticator + STS would:
///
/// 1. `k8s-aws-v1.` + base64url *without padding* of a URL;
/// 2. the URL is `https://sts.<region>.amazonaws.com/` with exactly the
///    parameters `Action=GetCallerIdentity`, `Version=2011-06-15`,
///    `X-Amz-Algorithm=AWS4-HMAC-SHA256`, `X-Amz-Expires=60`,
///    `X-Amz-SignedHeaders=host;x-k8s-aws-id`, `X-Amz-Credential=<akid>/<date>/<region>/sts/aws4_request`
///    for one of `credentials`, `X-Amz-Date` within 15 minutes of `now`,
///    `X-Amz-Security-Token` exactly when the credentials have one (and
///    equal to it), `X-Amz-Signature`; no other and none twice;
/// 3. the signature recomputes: canonical request `GET`, `/`, the other
///    parameters sorted and SigV4-encoded, headers
///    `host:sts.<region>.amazonaws.com` and `x-k8s-aws-id:<cluster_name>`,
///    payload hash of the empty body (what botocore signs for a presigned
///    STS GET; STS checks exactly this).
///
/// Returns why the token is refused.
pub fn verify_eks_token(
    token: &str,
    cluster_name: &str,
    region: &str,
    credentials: &[AwsCredentials],
    now: jiff::Timestamp,
) -> Result<(), String> {
    let encoded = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| format!("token does not start with {TOKEN_PREFIX}"))?;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|e| format!("token is not unpadded base64url: {e}"))?;
    let url = String::from_utf8(url).map_err(|_| "token URL is not UTF-8")?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| format!("token URL {url:?}: {e}"))?;
    let host = format!("sts.{region}.amazonaws.com");
    if parsed.scheme() != "https"
        || parsed.host_str() != Some(host.as_str())
        || parsed.port().is_some()
        || parsed.path() != "/"
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
    {
        return Err(format!("token URL is not https://{host}/?…: {url}"));
    }
    let pairs = query_pairs(parsed.query().unwrap_or(""));
    let mut params = BTreeMap::new();
    for (k, v) in &pairs {
        if !ALLOWED_PARAMS.contains(&k.as_str()) {
            return Err(format!("token URL has a parameter not allowed: {k}"));
        }
        if params.insert(k.as_str(), v.as_str()).is_some() {
            return Err(format!("token URL has {k} twice"));
        }
    }
    let param = |k: &str| params.get(k).copied();
    for (k, want) in [
        ("Action", "GetCallerIdentity"),
        ("Version", "2011-06-15"),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Expires", "60"),
        ("X-Amz-SignedHeaders", "host;x-k8s-aws-id"),
    ] {
        if param(k) != Some(want) {
            return Err(format!("{k} is {:?}, want {want:?}", param(k)));
        }
    }
    let amz_date = param("X-Amz-Date").ok_or("no X-Amz-Date")?;
    check_skew(amz_date, now)?;
    let credential = param("X-Amz-Credential").ok_or("no X-Amz-Credential")?;
    let (access_key_id, scope) = credential
        .split_once('/')
        .ok_or_else(|| format!("malformed X-Amz-Credential {credential:?}"))?;
    let want_scope = format!("{}/{region}/sts/aws4_request", &amz_date[..8]);
    if scope != want_scope {
        return Err(format!(
            "X-Amz-Credential scope {scope:?}, want {want_scope:?}"
        ));
    }
    let known = credentials
        .iter()
        .find(|c| c.access_key_id == access_key_id)
        .ok_or_else(|| format!("unknown access key {access_key_id}"))?;
    match (&known.session_token, param("X-Amz-Security-Token")) {
        (Some(want), Some(got)) if got == want => {}
        (Some(_), _) => return Err("X-Amz-Security-Token missing or wrong".to_string()),
        (None, None) => {}
        (None, Some(_)) => {
            return Err("X-Amz-Security-Token with long-term credentials".to_string());
        }
    }
    let signature = param("X-Amz-Signature").ok_or("no X-Amz-Signature")?;
    let signed: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .cloned()
        .collect();
    let canonical_request = format!(
        "GET\n/\n{}\nhost:{host}\nx-k8s-aws-id:{cluster_name}\n\nhost;x-k8s-aws-id\n{EMPTY_SHA256}",
        canonical_query(&signed)
    );
    let want = sigv4_signature(
        &known.secret_access_key,
        amz_date,
        region,
        "sts",
        &canonical_request,
    );
    if signature != want {
        return Err(format!(
            "signature mismatch (wrong cluster, region, key or tampered URL): got {signature}, want {want}"
        ));
    }
    Ok(())
}

/// An EKS token made with the `aws-sigv4` crate, the way `aws eks get-token`
/// makes one with botocore: presigned `GET
/// https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15`,
/// `x-k8s-aws-id: <cluster_name>` signed, expiring in 60 s, base64url
/// without padding, prefixed `k8s-aws-v1.`. Byte-for-byte what botocore
/// makes for the same credentials and time (tested in `fake_cluster.rs`).
pub fn presigned_eks_token(
    cluster_name: &str,
    region: &str,
    credentials: &AwsCredentials,
    time: SystemTime,
) -> String {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    let host = format!("sts.{region}.amazonaws.com");
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster_name)];
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .expect("signable request");
    let instructions = aws_sigv4_sign(request, credentials, "sts", region, time, settings);
    let (_, mut query) = instructions.into_parts();
    // aws-sigv4 lists X-Amz-Security-Token *after* X-Amz-Signature;
    // botocore puts the signature last. Same signature either way, but
    // moving it last makes the token byte-for-byte botocore's.
    query.sort_by_key(|(k, _)| *k == "X-Amz-Signature");
    let mut presigned = url;
    for (k, v) in query {
        presigned.push_str(&format!("&{k}={}", sigv4_encode(&v)));
    }
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)
    )
}

/// A parsed service proxy path.
struct ProxyTarget {
    namespace: String,
    scheme: Option<String>,
    name: String,
    port: Option<String>,
    /// Everything after `/proxy`, raw (`""` or starting with `/`).
    rest: String,
}

/// Parses `/api/v1/namespaces/{ns}/services/{[scheme:]name[:port]}/proxy[/rest]`.
fn proxy_target(path: &str) -> Option<ProxyTarget> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (namespace, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("services/")?;
    let (service, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("proxy")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let parts: Vec<&str> = service.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => (None, *name, None),
        [name, port] => (None, *name, Some(*port)),
        [scheme, name, port] => (Some(*scheme), *name, Some(*port)),
        _ => return None,
    };
    Some(ProxyTarget {
        namespace: namespace.to_string(),
        scheme: scheme.map(str::to_string),
        name: name.to_string(),
        port: port.filter(|p| !p.is_empty()).map(str::to_string),
        rest: rest.to_string(),
    })
}

/// Forwards a service proxy request to the Pushgateway: same method, body
/// and content type, the path after `/proxy` and the query byte for byte;
/// answers the Pushgateway's status, content type and body.
async fn proxy(
    state: &State,
    req: Request<Incoming>,
    target: ProxyTarget,
    query: Option<String>,
) -> Reply {
    let (namespace, name, port) = &state.config.expect_service;
    let known = target.namespace == *namespace
        && target.name == *name
        && target.port.as_ref().is_none_or(|p| p == port)
        && target.scheme.as_deref().is_none_or(|s| s == "http");
    if !known {
        return status_reply(
            404,
            "NotFound",
            &format!("services \"{}\" not found", target.name),
            Some(json!({"name": target.name, "kind": "services"})),
        );
    }
    let Some(upstream) = &state.config.pushgateway_url else {
        return status_reply(
            503,
            "ServiceUnavailable",
            &format!("no endpoints available for service \"{name}\""),
            None,
        );
    };
    let method = req.method().as_str().to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return status_reply(400, "BadRequest", &format!("reading body: {e}"), None),
    };
    let rest = if target.rest.is_empty() {
        "/"
    } else {
        &target.rest
    };
    let url = match &query {
        Some(q) => format!("{upstream}{rest}?{q}"),
        None => format!("{upstream}{rest}"),
    };
    match relay(&state.upstream, &method, &url, content_type, body).await {
        Ok((status, content_type, body)) => {
            let mut reply = Response::builder().status(status);
            if let Some(ct) = content_type {
                reply = reply.header("content-type", ct);
            }
            reply.body(Full::new(body)).expect("proxy reply")
        }
        Err(e) => status_reply(
            503,
            "ServiceUnavailable",
            &format!("error trying to reach service: {e}"),
            None,
        ),
    }
}

fn json_reply(code: u16, value: &Value) -> Reply {
    Response::builder()
        .status(StatusCode::from_u16(code).expect("status code"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .expect("JSON reply")
}

/// A `Status` object as the apiserver sends with every error.
fn status_reply(code: u16, reason: &str, message: &str, details: Option<Value>) -> Reply {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    json_reply(code, &status)
}
