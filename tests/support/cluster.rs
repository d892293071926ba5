//! The fake EKS cluster stack most cluster tests stand up: a real
//! Pushgateway behind the fake API server's service proxy, and an EKS stub
//! saying the cluster is ACTIVE at that API server.
//!
//! ```ignore
//! let c = Cluster::new(CLUSTER, REGION).object(KUSTOMIZATIONS, list).start().await;
//! let out = c.signed_in(Action::new().env("GITHUB_EVENT_NAME", "schedule")).run().await;
//! ```

use serde_json::Value;

use super::Action;
use super::aws::{AwsCredentials, EksStub};
use super::kube::{FakeApiConfig, FakeApiServer};
use super::pushgateway::Pushgateway;

/// What to start: the cluster's name and region, what its API server
/// serves, and which Pushgateway it proxies to.
pub struct Cluster {
    name: String,
    region: String,
    config: FakeApiConfig,
    pushgateway: Option<Pushgateway>,
}

impl Cluster {
    /// Cluster `name` in `region` accepting the test credentials' tokens,
    /// proxying the default Service to a fresh Pushgateway, serving only
    /// `/version` (see [`FakeApiConfig::new`]).
    pub fn new(name: &str, region: &str) -> Cluster {
        Cluster {
            name: name.to_string(),
            region: region.to_string(),
            config: FakeApiConfig::new(name, region),
            pushgateway: None,
        }
    }

    /// Uses this Pushgateway (e.g. one seeded with other groups) instead of
    /// a fresh one.
    pub fn pushgateway(mut self, pg: Pushgateway) -> Self {
        self.pushgateway = Some(pg);
        self
    }

    /// Serves `value` at `path` from the API server.
    pub fn object(self, path: &str, value: Value) -> Self {
        self.api(|c| c.object(path, value))
    }

    /// Any other change to the API server's configuration.
    pub fn api(mut self, edit: impl FnOnce(FakeApiConfig) -> FakeApiConfig) -> Self {
        self.config = edit(self.config);
        self
    }

    /// Starts the Pushgateway (unless given), the API server proxying to
    /// it, and the EKS stub, the cluster ACTIVE at the API server.
    pub async fn start(mut self) -> ClusterStack {
        let pg = match self.pushgateway.take() {
            Some(pg) => pg,
            None => Pushgateway::start().await,
        };
        let cluster = self.start_with(Some(&pg)).await;
        ClusterStack { pg, cluster }
    }

    /// The API server and the EKS stub only, the service proxy forwarding
    /// to `pushgateway`, one the test holds (None: proxy calls get 503, for
    /// runs given the Pushgateway by URL).
    pub async fn start_with(self, pushgateway: Option<&Pushgateway>) -> FakeEks {
        let config = match pushgateway {
            Some(pg) => self.config.pushgateway(&pg.url),
            None => self.config,
        };
        let api = FakeApiServer::start(config).await;
        let eks = EksStub::start().await;
        eks.active(&self.name, &self.region, &api).await;
        FakeEks {
            api,
            eks,
            name: self.name,
            region: self.region,
        }
    }
}

/// A running fake EKS cluster: its API server and the EKS stub that
/// describes it; both stop when dropped.
pub struct FakeEks {
    pub api: FakeApiServer,
    pub eks: EksStub,
    name: String,
    region: String,
}

impl FakeEks {
    /// Points `action` at this cluster: `cluster-name`, `aws-region`, and
    /// the EKS stub as `AWS_ENDPOINT_URL_EKS`. The credentials are the
    /// test's to give (see [`FakeEks::signed_in`]).
    pub fn target(&self, action: Action) -> Action {
        action
            .input("cluster-name", &self.name)
            .input("aws-region", &self.region)
            .env("AWS_ENDPOINT_URL_EKS", &self.eks.url())
    }

    /// [`FakeEks::target`] with [`AwsCredentials::test`].
    pub fn signed_in(&self, action: Action) -> Action {
        self.target(action).aws_credentials(&AwsCredentials::test())
    }

    /// The EKS token of the first request to the API server (a secret the
    /// outputs must not show).
    pub fn eks_token(&self) -> String {
        self.api
            .requests()
            .first()
            .and_then(|r| r.token.clone())
            .expect("the action called the API server with a token")
    }
}

/// A [`FakeEks`] and the Pushgateway behind its service proxy. Derefs to
/// the [`FakeEks`], so `stack.api`, `stack.eks` and `stack.signed_in(..)` work.
pub struct ClusterStack {
    pub pg: Pushgateway,
    pub cluster: FakeEks,
}

impl std::ops::Deref for ClusterStack {
    type Target = FakeEks;

    fn deref(&self) -> &FakeEks {
        &self.cluster
    }
}
