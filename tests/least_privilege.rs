//! The shipped IAM policy and RBAC allow exactly what the action does.

use serde_json::Value;

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn the_iam_policy_allows_describe_cluster_on_one_cluster_only() {
    let policy: Value = serde_json::from_str(&read("examples/iam-policy.json")).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Action"], "eks:DescribeCluster");
    let resource = s["Resource"].as_str().unwrap();
    assert!(
        resource.starts_with("arn:aws:eks:")
            && resource.contains(":cluster/")
            && !resource.contains('*'),
        "{resource}"
    );
}

#[test]
fn rbac_grants_the_pushgateway_proxy_and_read_only_flux_and_flagger() {
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&read("examples/rbac.yaml")).unwrap();
    let mut rules = Vec::new();
    for doc in &docs {
        if let Some(r) = doc["rules"].as_array() {
            rules.extend(r.iter().cloned());
        }
    }
    let verbs = |resource: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == resource)
            })
            .flat_map(|r| {
                r["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
            })
            .collect()
    };
    // A push is a PUT, which RBAC calls `update`; reading groups is GET; pruning is DELETE.
    assert_eq!(
        verbs("services/proxy"),
        ["get", "create", "update", "delete"]
    );
    let proxy = rules
        .iter()
        .find(|r| r["resources"][0] == "services/proxy")
        .unwrap();
    assert!(
        proxy["resourceNames"]
            .as_array()
            .is_some_and(|n| !n.is_empty()),
        "the proxy is limited to the Pushgateway service"
    );
    for resource in ["kustomizations", "gitrepositories", "canaries"] {
        assert_eq!(verbs(resource), ["get", "list"], "{resource} is read-only");
    }
    assert_eq!(rules.len(), 4, "nothing else is granted: {rules:#?}");
    let bindings = docs
        .iter()
        .filter(|d| d["kind"].as_str().is_some_and(|k| k.ends_with("Binding")))
        .count();
    assert_eq!(bindings, 2);
}
