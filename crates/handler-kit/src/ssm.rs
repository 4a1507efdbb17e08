//! The parameter store over SSM Parameter Store: SecureString parameters (records may
//! hold secrets), Intelligent-Tiering (standard while a record fits 4 KB,
//! advanced up to 8 KB for large runs).

use aws_sdk_ssm::types::{ParameterTier, ParameterType};

use crate::aws::{by_deadline, fault};
use crate::fault::{Fault, FaultKind};
use crate::store::ParameterStore;

#[derive(Clone, Debug)]
pub struct SsmStore {
    pub client: aws_sdk_ssm::Client,
    /// The parameters' description, e.g. "Org::ECS::TaskRun run record".
    pub description: &'static str,
}

impl ParameterStore for SsmStore {
    async fn get(&self, name: &str, by: f64) -> Result<Option<String>, Fault> {
        const OP: &str = "ssm:GetParameter";
        by_deadline(OP, by, async {
            match self
                .client
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
            {
                Ok(out) => Ok(Some(
                    out.parameter()
                        .and_then(|p| p.value())
                        .unwrap_or_default()
                        .to_string(),
                )),
                Err(e) => match fault(OP, e) {
                    f if f.kind == FaultKind::NotFound => Ok(None),
                    f => Err(f),
                },
            }
        })
        .await
    }

    async fn put(&self, name: &str, value: &str, by: f64) -> Result<(), Fault> {
        const OP: &str = "ssm:PutParameter";
        by_deadline(OP, by, async {
            self.client
                .put_parameter()
                .name(name)
                .description(self.description)
                .value(value)
                .r#type(ParameterType::SecureString)
                .tier(ParameterTier::IntelligentTiering)
                .overwrite(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| fault(OP, e))
        })
        .await
    }

    async fn create(&self, name: &str, value: &str, by: f64) -> Result<bool, Fault> {
        const OP: &str = "ssm:PutParameter";
        by_deadline(OP, by, async {
            match self
                .client
                .put_parameter()
                .name(name)
                .description(self.description)
                .value(value)
                .r#type(ParameterType::String)
                .tier(ParameterTier::Standard)
                .overwrite(false)
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e) => {
                    let already = e
                        .as_service_error()
                        .is_some_and(|e| e.is_parameter_already_exists());
                    if already {
                        Ok(false)
                    } else {
                        Err(fault(OP, e))
                    }
                }
            }
        })
        .await
    }

    async fn delete(&self, name: &str, by: f64) -> Result<bool, Fault> {
        const OP: &str = "ssm:DeleteParameter";
        by_deadline(OP, by, async {
            match self.client.delete_parameter().name(name).send().await {
                Ok(_) => Ok(true),
                Err(e) => match fault(OP, e) {
                    f if f.kind == FaultKind::NotFound => Ok(false),
                    f => Err(f),
                },
            }
        })
        .await
    }

    async fn list(
        &self,
        path: &str,
        next_token: Option<&str>,
        page_size: u32,
        by: f64,
    ) -> Result<(Vec<String>, Option<String>), Fault> {
        const OP: &str = "ssm:GetParametersByPath";
        by_deadline(OP, by, async {
            let out = self
                .client
                .get_parameters_by_path()
                .path(path)
                .recursive(false)
                .with_decryption(true)
                .max_results(page_size as i32)
                .set_next_token(next_token.map(str::to_string))
                .send()
                .await
                .map_err(|e| fault(OP, e))?;
            Ok((
                out.parameters()
                    .iter()
                    .filter_map(|p| p.value())
                    .map(str::to_string)
                    .collect(),
                out.next_token().map(str::to_string),
            ))
        })
        .await
    }
}
