//! The low-level stage: one small pure function per kind of input value,
//! each taking the trimmed string (and the input's name, for the message)
//! and returning the typed value or an [`Error::Input`] that names the input
//! and shows the value (never a secret's). No I/O, no environment.

use super::{Kustomizations, Mode, ServiceRef};
use crate::{Error, Result, duration};

pub(super) fn invalid(name: &str, value: &str, why: &str) -> Error {
    Error::input(name, format!("invalid value `{value}`: {why}"))
}

/// `v` itself if `ok`, else the error naming the input and saying `why`.
fn checked(ok: bool, name: &str, v: &str, why: &str) -> Result<String> {
    if ok {
        Ok(v.to_string())
    } else {
        Err(invalid(name, v, why))
    }
}

pub(super) fn parse_mode(v: &str) -> Result<Mode> {
    match v {
        "auto" => Ok(Mode::Auto),
        "event" => Ok(Mode::Event),
        "workflows" => Ok(Mode::Workflows),
        "cluster" => Ok(Mode::Cluster),
        _ => Err(invalid(
            "mode",
            v,
            "expected one of auto, event, workflows, cluster",
        )),
    }
}

/// GitHub's boolean spellings (the YAML 1.2 core schema, as `core.getBooleanInput` reads them).
pub(super) fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        _ => Err(invalid(name, v, "expected true or false")),
    }
}

/// Longest `lookback` or `retention`: ten years. Far beyond any real
/// history or retention, and far from where date arithmetic overflows
/// (`99999999999d` would otherwise ask GitHub for runs since year -9999).
pub const MAX_DURATION: u64 = 3_653 * 86_400;

pub(super) fn parse_duration(name: &str, v: &str, zero_ok: bool) -> Result<u64> {
    match duration::parse(v) {
        Ok(0) if !zero_ok => Err(invalid(name, v, "must be longer than zero")),
        Ok(s) if s > MAX_DURATION => {
            Err(invalid(name, v, "at most 10 years (`3653d`) is supported"))
        }
        Ok(s) => Ok(s),
        Err(why) => Err(invalid(name, v, &why)),
    }
}

/// `workflows`: workflow file names (`deploy.yml`) or numeric workflow ids.
/// Each becomes one path segment of a GitHub API URL, so anything that could
/// change the path (`..`, `/`, `?`, `#`, `%`, spaces, control characters) is
/// refused here rather than sent.
pub(super) fn parse_workflows(v: &str) -> Result<Vec<String>> {
    let items = parse_list("workflows", v)?;
    for item in &items {
        let is_id = item.bytes().all(|b| b.is_ascii_digit()) && item.len() <= 20;
        let is_file = item.len() <= 255
            && (item.ends_with(".yml") || item.ends_with(".yaml"))
            && !item.starts_with('.')
            && item
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !is_id && !is_file {
            return Err(invalid(
                "workflows",
                item,
                "expected a workflow file name such as `deploy.yml` (letters, digits, `-`, `_`, `.`; no path) or a numeric workflow id",
            ));
        }
    }
    Ok(items)
}

/// A token (`github-token`, `remote-write-bearer-token`): visible ASCII only,
/// as an HTTP header carries it. The message never shows the value.
pub(super) fn parse_token(name: &str, v: String) -> Result<String> {
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::input(
            name,
            "holds a space, a line break or a character a token cannot have (the value is not shown: it is a secret)",
        ));
    }
    Ok(v)
}

/// A DNS-1123 label, what Kubernetes allows for namespaces and service names.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain, what Kubernetes allows for most object names.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

pub(super) fn parse_service(v: &str) -> Result<ServiceRef> {
    let name = "pushgateway-service";
    let why = "expected `namespace/service:port`, e.g. `observability/pushgateway:9091`";
    let (namespace, rest) = v.split_once('/').ok_or_else(|| invalid(name, v, why))?;
    let (service, port) = match rest.split_once(':') {
        Some((s, p)) => (s, Some(p)),
        None => (rest, None),
    };
    // A port number, or a port name (IANA service name: at most 15 characters, at least one letter).
    let port_ok = |p: &str| {
        p.parse::<u16>().is_ok_and(|n| n > 0)
            || (is_dns_label(p) && p.len() <= 15 && p.bytes().any(|b| b.is_ascii_lowercase()))
    };
    if !is_dns_label(namespace) || !is_dns_label(service) || !port.is_none_or(port_ok) {
        return Err(invalid(name, v, why));
    }
    Ok(ServiceRef {
        namespace: namespace.into(),
        name: service.into(),
        port: port.map(String::from),
    })
}

pub(super) fn parse_job(v: &str) -> Result<String> {
    // Pushgateway accepts any job name; `/` is carried with its @base64 form.
    parse_label_value("job", v.to_string())
}

/// Longest label value an input may set (`job`, `environment`): a label is
/// a name, and every sample and summary line carries it.
const MAX_LABEL: usize = 256;

pub(super) fn parse_label_value(name: &str, v: String) -> Result<String> {
    if v.chars().any(crate::actions::is_unsafe_char) {
        return Err(invalid(
            name,
            &crate::actions::one_line(&v),
            "control characters and line breaks are not allowed",
        ));
    }
    if v.chars().count() > MAX_LABEL {
        return Err(invalid(
            name,
            &v,
            &format!("longer than {MAX_LABEL} characters"),
        ));
    }
    Ok(v)
}

/// EKS cluster names: 1–100 characters, alphanumerics, `-` and `_`, starting alphanumeric.
pub(super) fn parse_cluster_name(v: &str) -> Result<String> {
    let ok = v.len() <= 100
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    checked(
        ok,
        "cluster-name",
        v,
        "an EKS cluster name has 1–100 letters, digits, `-` or `_`",
    )
}

pub(super) fn parse_region(v: &str) -> Result<String> {
    // `eu-west-1`, `us-gov-west-1`: it becomes part of AWS host names.
    let parts: Vec<&str> = v.split('-').collect();
    let ok = parts.len() >= 3
        && v.len() <= 32
        && parts.iter().all(|p| !p.is_empty())
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    checked(
        ok,
        "aws-region",
        v,
        "expected an AWS region such as `eu-west-1`",
    )
}

pub(super) fn parse_role_arn(v: &str) -> Result<String> {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    // IAM role names and paths: letters, digits and `+=,.@_-/`.
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > "role/".len()
        && parts[5].len() <= 2_048
        && !parts[5].ends_with('/')
        && parts[5]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b));
    checked(
        ok,
        "role-to-assume",
        v,
        "expected an IAM role ARN such as `arn:aws:iam::123456789012:role/dora`",
    )
}

/// A comma- or newline-separated list; blanks between separators are ignored.
pub(super) fn parse_list(name: &str, v: &str) -> Result<Vec<String>> {
    let items: Vec<String> = v
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if items.is_empty() {
        return Err(invalid(name, v, "the list is empty"));
    }
    Ok(items)
}

/// `incident-labels`: issue label names (GitHub allows 50 characters;
/// a comma would split the API's `labels` filter). Empty: incidents off;
/// a list of only separators is a mistake, not "off".
pub(super) fn parse_incident_labels(v: &str) -> Result<Vec<String>> {
    let name = "incident-labels";
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let items = parse_list(name, v)?;
    for item in &items {
        if item.chars().count() > 50 || item.chars().any(crate::actions::is_unsafe_char) {
            return Err(invalid(
                name,
                &crate::actions::one_line(item),
                "a GitHub label name has at most 50 characters and no control characters",
            ));
        }
    }
    Ok(items)
}

/// A repository as `owner/name` (letters, digits, `-`, `_`, `.`): it
/// becomes two path segments of a GitHub API URL.
pub(super) fn parse_repository(name: &str, v: &str) -> Result<String> {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p != "."
            && p != ".."
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let ok = v.split_once('/').is_some_and(|(o, r)| part(o) && part(r));
    checked(ok, name, v, "expected a repository as `owner/name`")
}

pub(super) fn parse_kustomizations(v: &str) -> Result<Kustomizations> {
    let name = "kustomizations";
    let items = parse_list(name, v)?;
    if items.iter().any(|i| i == "*") {
        if items.len() > 1 {
            return Err(invalid(
                name,
                v,
                "`*` already means all; list nothing beside it",
            ));
        }
        return Ok(Kustomizations::All);
    }
    items
        .iter()
        .map(|item| match item.split_once('/') {
            Some((ns, n)) if is_dns_label(ns) && is_dns_subdomain(n) => {
                Ok((ns.to_string(), n.to_string()))
            }
            _ => Err(invalid(
                name,
                item,
                "expected `namespace/name` (or `*` for all)",
            )),
        })
        .collect::<Result<_>>()
        .map(Kustomizations::Named)
}

pub(super) fn parse_namespaces(v: &str) -> Result<Vec<String>> {
    let items = parse_list("canary-namespaces", v)?;
    match items.iter().find(|ns| !is_dns_label(ns)) {
        Some(bad) => Err(invalid(
            "canary-namespaces",
            bad,
            "not a Kubernetes namespace name",
        )),
        None => Ok(items),
    }
}

/// `report-file`: unset or empty is the default, `none` turns the report
/// off, anything else is a file path (not a directory, no NUL).
pub(super) fn parse_report_file(v: Option<String>) -> Result<super::ReportFile> {
    use super::ReportFile;
    let Some(v) = v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else {
        return Ok(ReportFile::Default);
    };
    if v.eq_ignore_ascii_case("none") {
        return Ok(ReportFile::Off);
    }
    if v.contains('\0') || v.ends_with('/') || v.ends_with("/.") || v == "." || v == ".." {
        return Err(invalid(
            "report-file",
            &v.replace('\0', "\\0"),
            "expected a file path, or `none`",
        ));
    }
    Ok(ReportFile::Path(v.into()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::Says::{Contains, Exactly, StartsWith};
    use super::super::tests::{Case, assert_errors, assert_refused, error, parse};
    use super::*;
    use crate::inputs::Branches;

    // Each parser on its own, with literal values.

    /// The input an error names, or a message saying what did not fail.
    fn named<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::Input { name, .. }) => name,
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn mode_spellings() {
        assert_eq!(parse_mode("auto").unwrap(), Mode::Auto);
        assert_eq!(parse_mode("event").unwrap(), Mode::Event);
        assert_eq!(parse_mode("workflows").unwrap(), Mode::Workflows);
        assert_eq!(parse_mode("cluster").unwrap(), Mode::Cluster);
        for v in ["Auto", "EVENT", "workflow", "clusters", ""] {
            assert_eq!(named(parse_mode(v)), "mode", "{v:?}");
        }
    }

    #[test]
    fn bool_spellings_are_yaml_core_ones() {
        for v in ["true", "True", "TRUE"] {
            assert!(parse_bool("dry-run", v).unwrap(), "{v}");
        }
        for v in ["false", "False", "FALSE"] {
            assert!(!parse_bool("dry-run", v).unwrap(), "{v}");
        }
        for v in ["yes", "no", "1", "0", "on", "tRUE", ""] {
            assert_eq!(named(parse_bool("dry-run", v)), "dry-run", "{v:?}");
        }
    }

    #[test]
    fn durations_zero_only_where_allowed() {
        assert_eq!(parse_duration("retention", "0", true).unwrap(), 0);
        assert_eq!(named(parse_duration("lookback", "0", false)), "lookback");
        assert_eq!(
            parse_duration("lookback", "12h", false).unwrap(),
            12 * 3_600
        );
        assert_eq!(
            parse_duration("lookback", "3653d", false).unwrap(),
            MAX_DURATION
        );
        assert_eq!(
            named(parse_duration("lookback", "3654d", false)),
            "lookback"
        );
        assert_eq!(
            named(parse_duration("retention", "soon", true)),
            "retention"
        );
    }

    #[test]
    fn lists_drop_blanks_and_refuse_emptiness() {
        assert_eq!(parse_list("x", "a").unwrap(), ["a"]);
        assert_eq!(parse_list("x", " a , b ").unwrap(), ["a", "b"]);
        assert_eq!(parse_list("x", "a\nb,,c\n").unwrap(), ["a", "b", "c"]);
        for v in [",", " , \n ", "\n\n"] {
            assert_eq!(named(parse_list("x", v)), "x", "{v:?}");
        }
    }

    #[test]
    fn incident_labels_empty_is_off_but_only_separators_is_refused() {
        assert!(parse_incident_labels("").unwrap().is_empty());
        assert_eq!(
            parse_incident_labels("incident, sev1\noutage").unwrap(),
            ["incident", "sev1", "outage"]
        );
        for v in [",", " , \n "] {
            assert_eq!(named(parse_incident_labels(v)), "incident-labels", "{v:?}");
        }
        let long = "x".repeat(51);
        for v in [long.as_str(), "a\u{7}b"] {
            assert_eq!(named(parse_incident_labels(v)), "incident-labels", "{v:?}");
        }
    }

    #[test]
    fn repositories_are_owner_slash_name() {
        assert_eq!(
            parse_repository("r", "octo-org/ops").unwrap(),
            "octo-org/ops"
        );
        assert_eq!(parse_repository("r", "a.b/c_d-1").unwrap(), "a.b/c_d-1");
        for bad in ["ops", "a/b/c", "/b", "a/", "../b", "a/..", "a b/c", "a/b?x"] {
            assert_eq!(named(parse_repository("r", bad)), "r", "{bad}");
        }
    }

    #[test]
    fn dns_labels_and_subdomains() {
        for ok in ["a", "prod", "flux-system", "a1", "1a", &"a".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_dns_subdomain("apps.prod"));
        assert!(!is_dns_subdomain("apps..prod"));
        assert!(!is_dns_subdomain(&format!("{}.a", "a".repeat(253))));
    }

    #[test]
    fn services_with_and_without_a_port() {
        let svc = |ns: &str, n: &str, p: Option<&str>| ServiceRef {
            namespace: ns.into(),
            name: n.into(),
            port: p.map(String::from),
        };
        assert_eq!(
            parse_service("observability/pushgateway:9091").unwrap(),
            svc("observability", "pushgateway", Some("9091"))
        );
        assert_eq!(parse_service("obs/pg").unwrap(), svc("obs", "pg", None));
        assert_eq!(
            parse_service("obs/pg:http").unwrap(),
            svc("obs", "pg", Some("http"))
        );
        for bad in [
            "pg",
            "pg:9091",
            "obs/pg:0",
            "obs/pg:65536",
            "obs/pg:",
            "obs/pg:1234567890123456",
            "obs/pg:-http",
            "Obs/pg",
            "obs/pg/x",
            "/pg",
        ] {
            assert_eq!(named(parse_service(bad)), "pushgateway-service", "{bad}");
        }
    }

    #[test]
    fn kustomizations_all_or_named() {
        assert_eq!(parse_kustomizations("*").unwrap(), Kustomizations::All);
        assert_eq!(
            parse_kustomizations("flux-system/apps, prod/web.v2").unwrap(),
            Kustomizations::Named(vec![
                ("flux-system".into(), "apps".into()),
                ("prod".into(), "web.v2".into())
            ])
        );
        for bad in ["apps", "*,a/b", "a/", "/b", "A/b", "a/B"] {
            assert_eq!(named(parse_kustomizations(bad)), "kustomizations", "{bad}");
        }
    }

    #[test]
    fn cluster_names() {
        for ok in ["prod", "prod-eks", "a_1", "9", &"a".repeat(100)] {
            assert_eq!(parse_cluster_name(ok).unwrap(), ok);
        }
        for bad in ["-prod", "_prod", "pro d", "prod.eks", &"a".repeat(101)] {
            assert_eq!(named(parse_cluster_name(bad)), "cluster-name", "{bad}");
        }
    }

    #[test]
    fn tokens_are_visible_ascii() {
        assert_eq!(
            parse_token("github-token", "ghp_x-1".into()).unwrap(),
            "ghp_x-1"
        );
        for bad in ["a b", "a\tb", "é", "a\u{0}"] {
            assert_eq!(
                named(parse_token("github-token", bad.into())),
                "github-token"
            );
        }
    }

    #[test]
    fn bad_values_name_the_input_and_the_value() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&[("INPUT_MODE", "deploy")], Exactly("input `mode`: invalid value `deploy`: expected one of auto, event, workflows, cluster")),
            (&[("INPUT_DRY-RUN", "yes")], StartsWith("input `dry-run`: invalid value `yes`")),
            (&[("INPUT_FAIL-ON-ERROR", "1")], StartsWith("input `fail-on-error`: invalid value `1`")),
            (&[("INPUT_PUSHGATEWAY-URL", "localhost:9091")], StartsWith("input `pushgateway-url`: invalid value `localhost:9091`")),
            (&[("INPUT_PUSHGATEWAY-URL", "ftp://h/")], Contains("http:// or https://")),
            (&[("INPUT_PUSHGATEWAY-URL", "http://h/?a=b")], Contains("query")),
            (&[("INPUT_RETENTION", "90")], StartsWith("input `retention`: invalid value `90`")),
            (&[("INPUT_LOOKBACK", "0")], Contains("longer than zero")),
            (&[("INPUT_LOOKBACK", "3y")], StartsWith("input `lookback`")),
            (&[("INPUT_PUSHGATEWAY-SERVICE", "pushgateway:9091")], StartsWith("input `pushgateway-service`")),
            (&[("INPUT_PUSHGATEWAY-SERVICE", "obs/pg:0")], StartsWith("input `pushgateway-service`")),
            (&[("INPUT_KUSTOMIZATIONS", "apps")], StartsWith("input `kustomizations`: invalid value `apps`")),
            (&[("INPUT_KUSTOMIZATIONS", "*, flux-system/apps")], Contains("`*` already means all")),
            (&[("INPUT_CANARY-NAMESPACES", "prod,Bad_NS")], Contains("`Bad_NS`")),
            (&[("INPUT_DEPLOY-BRANCHES", " , ,")], Contains("the list is empty")),
            (&[("INPUT_ENVIRONMENT", "a\u{7}b")], Contains("control characters")),
            (&[("INPUT_CLUSTER-NAME", "my cluster")], StartsWith("input `cluster-name`: invalid value")),
            (&[("INPUT_AWS-REGION", "Europe")], StartsWith("input `aws-region`: invalid value")),
            (&[("INPUT_ROLE-TO-ASSUME", "dora-role")], StartsWith("input `role-to-assume`: invalid value")),
        ];
        assert_errors(cases);
    }

    #[test]
    fn lists_split_on_commas_and_newlines() {
        let i = parse(&[("INPUT_DEPLOY-BRANCHES", "main,\n release/* ,\n\n")]).unwrap();
        assert_eq!(
            i.deploy_branches,
            Branches::Patterns(vec!["main".into(), "release/*".into()])
        );
        let i = parse(&[("INPUT_KUSTOMIZATIONS", "*")]).unwrap();
        assert_eq!(i.kustomizations, Kustomizations::All);
        let i = parse(&[("INPUT_CANARY-NAMESPACES", "prod\nstaging")]).unwrap();
        assert_eq!(i.canary_namespaces, vec!["prod", "staging"]);
        let i = parse(&[("INPUT_PUSHGATEWAY-SERVICE", "monitoring/pgw")]).unwrap();
        assert_eq!(i.pushgateway_service.unwrap().port, None);
        let i = parse(&[("INPUT_PUSHGATEWAY-SERVICE", "monitoring/pgw:http")]).unwrap();
        assert_eq!(i.pushgateway_service.unwrap().port.as_deref(), Some("http"));
    }

    #[test]
    fn workflows_that_would_change_the_api_path_are_refused() {
        assert_refused(
            "workflows",
            &[
                "../../x.yml",
                "..",
                ".",
                "deploy.yml,..",
                "a/b.yml",
                "deploy.yml?x=1",
                "deploy.yml#x",
                "deploy%2F.yml",
                "my deploy.yml",
                "deploy\u{0}.yml",
                "deploy\u{7}.yml",
                "deploy\r.yml",
                "deploy.yml\u{2028}x",
                "..yml",
                "deploy",
                "deploy.json",
                "\\deploy.yml",
                "-1",
                &"9".repeat(21),
                &format!("{}.yml", "a".repeat(300)),
            ],
        );
        let i = parse(&[("INPUT_WORKFLOWS", "deploy.yml, release-eu_1.yaml\n12345")]).unwrap();
        assert_eq!(i.workflows, ["deploy.yml", "release-eu_1.yaml", "12345"]);
        assert!(error(&[("INPUT_WORKFLOWS", "../../x.yml")]).contains("`../../x.yml`"));
    }

    #[test]
    fn durations_beyond_ten_years_are_refused() {
        for name in ["lookback", "retention"] {
            assert_refused(
                name,
                &[
                    "99999999999d",
                    "3654d",
                    "522w",
                    "87697h",
                    "9223372036854775807s",
                    "3653d1s",
                ],
            );
            let key = format!("INPUT_{}", name.to_uppercase());
            assert!(
                parse(&[(&key, "3653d")]).is_ok(),
                "{name}: 10 years is fine"
            );
        }
        assert!(error(&[("INPUT_LOOKBACK", "99999999999d")]).contains("at most 10 years"));
    }

    #[test]
    fn tokens_and_passwords_with_line_breaks_are_refused_without_showing_them() {
        assert_refused(
            "github-token",
            &["ghp_a b", "ghp_a\nb", "ghp_a\rb", "ghp_\u{0}", "ghp_é"],
        );
        let e = error(&[("INPUT_GITHUB-TOKEN", "ghp_secret\nx")]);
        assert!(!e.contains("ghp_secret"), "{e}");
        let url = (
            "INPUT_REMOTE-WRITE-URL",
            "https://mimir.example/api/v1/push",
        );
        let e = error(&[url, ("INPUT_REMOTE-WRITE-BEARER-TOKEN", "tok en-secret")]);
        assert!(
            e.starts_with("input `remote-write-bearer-token`") && !e.contains("en-secret"),
            "{e}"
        );
        let e = error(&[
            url,
            ("INPUT_REMOTE-WRITE-USERNAME", "u"),
            ("INPUT_REMOTE-WRITE-PASSWORD", "pass\rword-secret"),
        ]);
        assert!(
            e.starts_with("input `remote-write-password`") && !e.contains("word-secret"),
            "{e}"
        );
        assert!(
            error(&[
                url,
                ("INPUT_REMOTE-WRITE-USERNAME", "u:x"),
                ("INPUT_REMOTE-WRITE-PASSWORD", "p"),
            ])
            .starts_with("input `remote-write-username`")
        );
    }

    #[test]
    fn label_inputs_with_line_breaks_or_huge_values_are_refused() {
        for name in ["job", "environment"] {
            assert_refused(
                name,
                &[
                    "a\rb",
                    "a\nb",
                    "a\u{0}b",
                    "a\u{85}b",
                    "a\u{2028}b",
                    "a\u{2029}b",
                    "a\u{1b}[31mb",
                    &"x".repeat(257),
                ],
            );
        }
        assert_refused("deploy-branches", &["main,rel\u{0}ease", "ma\u{2028}in"]);
        // The message shows the value with its control characters escaped.
        assert!(error(&[("INPUT_JOB", "a\rb")]).contains("`a\\rb`"));
    }

    #[test]
    fn aws_inputs_that_are_not_aws_names_are_refused() {
        let cluster = ("INPUT_CLUSTER-NAME", "prod");
        let refused: [(&str, &[&str]); 2] = [
            (
                "aws-region",
                &[
                    "---",
                    "a--1",
                    "eu-west-",
                    "-eu-west-1",
                    "eu-west-x",
                    "1u-west-1",
                    "eu-west-1.evil.com",
                ],
            ),
            (
                "role-to-assume",
                &[
                    "arn:aws:iam::123456789012:role/a b",
                    "arn:aws:iam::123456789012:role/a\nb",
                    "arn:aws:iam::123456789012:role/a?b",
                    "arn:aws:iam::123456789012:role/",
                    "arn:aws:iam::123456789012:role/path/",
                    "arn:aws:iam:eu-west-1:123456789012:role/dora",
                    "arn::iam::123456789012:role/dora",
                    "arn:AWS:iam::123456789012:role/dora",
                ],
            ),
        ];
        for (name, values) in refused {
            let key = format!("INPUT_{}", name.to_uppercase());
            for value in values {
                let e = error(&[cluster, (&key, value)]);
                assert!(e.starts_with(&format!("input `{name}`")), "{value}: {e}");
            }
        }
        assert!(parse(&[cluster, ("INPUT_AWS-REGION", "us-gov-west-1")]).is_ok());
        assert!(
            parse(&[
                cluster,
                (
                    "INPUT_ROLE-TO-ASSUME",
                    "arn:aws-cn:iam::123456789012:role/ci/dora+x=1,a.b@c_d-e"
                )
            ])
            .is_ok()
        );
    }
}
