//! Any bytes as the payload of either deploy event, under both branch rules,
//! and as a REST run: a deployment whose labels are filled and whose group
//! renders and has a decodable path, a non-deployment, or a clean error.
#![no_main]

use dora_action::dora;
use dora_action::inputs::Branches;
use dora_action::sources::payload::{self, Observation, Rules};
use dora_action::sinks::pushgateway::group_path;
use libfuzzer_sys::fuzz_target;

fn check(observation: Result<Observation, String>) {
    match observation {
        Ok(Observation::Deploy { deploy, .. }) => {
            assert!(!deploy.repository.is_empty(), "{deploy:?}");
            assert!(!deploy.source.is_empty(), "{deploy:?}");
            assert!(!deploy.branch.is_empty(), "{deploy:?}");
            assert!(!deploy.sha.is_empty(), "{deploy:?}");
            let group = dora::deploy_group(&deploy);
            let path = group_path(
                "dora",
                group.grouping.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            assert!(!path.split('/').any(|s| s == "." || s == ".."), "{path}");
        }
        Ok(Observation::NotADeploy { reason }) => assert!(!reason.is_empty()),
        Err(e) => assert!(!e.is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let branches = [
        Branches::DefaultBranch,
        Branches::Patterns(vec!["main".into(), "release/*".into()]),
    ];
    for deploy_branches in &branches {
        let rules = Rules {
            deploy_branches,
            environment: "production",
        };
        for event in ["workflow_run", "deployment_status"] {
            check(payload::parse(event, data, &rules));
        }
        if let Ok(v) = payload::json(data)
            && let Some(run) = v.get("workflow_run")
        {
            check(payload::rest_run(
                run.clone(),
                "octo-org/shop",
                Some("main"),
                &rules,
            ));
        }
    }
});
