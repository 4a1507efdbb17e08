//! The properties as the handlers read them (validated against schema.json first): the
//! types `cfn generate` writes from schema.json into `model/generated.rs` (with the
//! read-only and write-only property names; `model/codegen.json` sets the Rust types of
//! its integers), and here their defaults.

use serde::Deserialize;
use serde_json::Value;

use crate::error::RestartError;
use crate::machine::WaitFor;

mod generated;

pub use generated::*;

/// The handlers' name for the generated `ResourceModel` (the name cfn's model resolver
/// gives a schema's root).
pub type Properties = ResourceModel;

pub const DEFAULT_CLUSTER: &str = "default";
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 1800;
pub const DEFAULT_POLL_INTERVAL_SECONDS: u32 = 15;

impl ResourceModel {
    /// The cluster given, else the one a service ARN names (`Ref` of an
    /// `AWS::ECS::Service` is its ARN, `.../service/<cluster>/<name>`), else, for a
    /// service given by name, `default` (as ECS assumes: DescribeServices, "If you do not
    /// specify a cluster, the default cluster is assumed").
    ///
    /// A short service ARN without `Cluster` is refused: services created before 2021
    /// keep `arn:aws:ecs:<region>:<account>:service/<name>`, which names no cluster, and
    /// `Ref` of one stays that short ARN (ECS Developer Guide, "Migrate an Amazon ECS
    /// short service ARN to a long ARN": "When the AWS CloudFormation stack's
    /// PhysicalResourceId represents the service ARN, the value doesn't change and
    /// continues as the short service ARN"). Taking `default` then looked for the service
    /// in a cluster it is most often not in; nothing else tells the cluster.
    pub fn cluster(&self) -> Result<&str, RestartError> {
        match (self.named_cluster(), self.service_arn_path()) {
            (Some(cluster), _) => Ok(cluster),
            (None, Some(_)) => Err(RestartError::InvalidRequest(format!(
                "Service {} is a short service ARN (the format of services created before 2021, arn:aws:ecs:<region>:<account>:service/<name>), which names no cluster; Ref of such a service stays short even after its ARN is migrated. Set Cluster to the service's cluster (for example Cluster: !Ref MyCluster, or Cluster: default when it runs there)",
                self.service
            ))),
            (None, None) => Ok(DEFAULT_CLUSTER),
        }
    }

    /// The cluster as the restart's inputs name it, for telling whether they changed (a
    /// short ARN without `Cluster`, which `cluster` refuses, compares as `default`, as it
    /// always did).
    pub fn cluster_for_comparison(&self) -> &str {
        self.named_cluster().unwrap_or(DEFAULT_CLUSTER)
    }

    /// `Cluster`, else the cluster of a long service ARN.
    fn named_cluster(&self) -> Option<&str> {
        if let Some(cluster) = self.cluster.as_deref().filter(|c| !c.is_empty()) {
            return Some(cluster);
        }
        self.service_arn_path()
            .and_then(|path| path.split_once('/'))
            .map(|(cluster, _)| cluster)
            .filter(|cluster| !cluster.is_empty())
    }

    /// What follows `:service/` when the service is given by ARN.
    fn service_arn_path(&self) -> Option<&str> {
        self.service
            .strip_prefix("arn:")
            .and_then(|arn| arn.split_once(":service/"))
            .map(|(_, path)| path)
    }

    /// `WaitFor` (a string, as the schema's enums are in the model) read by
    /// `machine::WaitFor`'s own names; the schema admits no other value.
    pub fn wait_for(&self) -> WaitFor {
        self.wait_for
            .as_deref()
            .and_then(|name| WaitFor::deserialize(Value::from(name)).ok())
            .unwrap_or(WaitFor::SteadyState)
    }

    pub fn timeout_seconds(&self) -> u32 {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT_SECONDS)
    }

    pub fn poll_interval_seconds(&self) -> u32 {
        self.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL_SECONDS)
    }

    pub fn restart_on_update(&self) -> bool {
        self.restart_on_update.unwrap_or(true)
    }

    pub fn run_on_rollback(&self) -> bool {
        self.run_on_rollback.unwrap_or(false)
    }
}

/// The properties as typed data; a failure names the path only (serde's message would
/// quote the value).
pub fn typed(properties: &Value) -> Result<Properties, RestartError> {
    serde_path_to_error::deserialize(properties).map_err(|e| {
        RestartError::InvalidModel(vec![format!(
            "/{}: not of the expected type",
            e.path().to_string().replace('.', "/")
        )])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(cluster: Option<&str>, service: &str) -> Properties {
        Properties {
            cluster: cluster.map(str::to_string),
            service: service.to_string(),
            ..Properties::default()
        }
    }

    #[test]
    fn properties_take_scalars_as_cloudformation_sends_them() {
        let strings: Properties = serde_json::from_value(serde_json::json!({
            "Service": "api", "Timeout": "60", "RestartOnUpdate": "false", "WaitFor": "STARTED"
        }))
        .expect("strings as scalars");
        assert_eq!(strings.timeout_seconds(), 60);
        assert!(!strings.restart_on_update());
        assert_eq!(strings.wait_for(), WaitFor::Started);
        assert_eq!(of(None, "api").wait_for(), WaitFor::SteadyState);
        // Written back with native scalars, without the properties not given.
        assert_eq!(
            serde_json::to_value(&strings).expect("serialisable"),
            serde_json::json!({
                "Service": "api", "Timeout": 60, "RestartOnUpdate": false, "WaitFor": "STARTED"
            })
        );
    }

    #[test]
    fn the_cluster_comes_from_the_property_then_the_service_arn_then_default() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:service/prod/api";
        let short = "arn:aws:ecs:us-east-1:123456789012:service/api";
        let cases = [
            (Some("given"), arn, Some("given")),
            (None, arn, Some("prod")),
            (Some(""), arn, Some("prod")),
            (None, "api", Some("default")),
            // A short (pre-2021) ARN names no cluster: refused, asking for Cluster.
            (None, short, None),
            (Some(""), short, None),
            (
                None,
                "arn:aws:ecs:us-east-1:123456789012:service//api",
                None,
            ),
            (Some("prod"), short, Some("prod")),
        ];
        for (cluster, service, want) in cases {
            let got = of(cluster, service).cluster().map(str::to_string);
            match (got, want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{cluster:?} {service}"),
                (Err(RestartError::InvalidRequest(why)), None) => {
                    assert!(why.contains("Set Cluster"), "{why}");
                    assert!(why.contains(service), "{why}");
                }
                (got, want) => panic!("{cluster:?} {service}: {got:?}, want {want:?}"),
            }
        }
        // Change detection keeps comparing a short ARN alone as in the default cluster.
        assert_eq!(of(None, short).cluster_for_comparison(), "default");
    }
}
