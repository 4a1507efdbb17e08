//! The ECS gateway over the AWS SDK.

use aws_sdk_ecs::types::{DesiredStatus, LaunchType, PropagateTags, TaskField};

use crate::ecs::{
    Described, Ecs, Fault, FaultKind, LaunchSpec, Launched, LogPage, LogPageQuery, StartedTask,
    TaskDefinitionInfo, ATTEMPT_TAG,
};
use crate::translator;
use handler_kit::aws::{by_deadline, fault};

#[derive(Clone, Debug)]
pub struct SdkEcs {
    pub client: aws_sdk_ecs::Client,
    /// For the logs of the tasks (their awslogs streams).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// For the status of the stack (AdoptExisting).
    pub stacks: aws_sdk_cloudformation::Client,
}

/// StartTask has no idempotency token: the SDK must not send it twice on its own.
fn no_retries() -> aws_sdk_ecs::config::Builder {
    aws_sdk_ecs::config::Builder::default()
        .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
}

impl Ecs for SdkEcs {
    async fn describe_task_definition(
        &self,
        reference: &str,
        by: f64,
    ) -> Result<TaskDefinitionInfo, Fault> {
        const OP: &str = "ecs:DescribeTaskDefinition";
        by_deadline(OP, by, async {
            let out = self
                .client
                .describe_task_definition()
                .task_definition(reference)
                .send()
                .await
                .map_err(|e| fault(OP, e))?;
            out.task_definition()
                .map(translator::task_definition)
                .ok_or_else(|| {
                    Fault::new(
                        OP,
                        FaultKind::BadRequest,
                        format!("task definition {reference} not found"),
                    )
                })
        })
        .await
    }

    async fn run_task(
        &self,
        spec: &LaunchSpec,
        count: u32,
        client_token: &str,
        by: f64,
    ) -> Result<Launched, Fault> {
        const OP: &str = "ecs:RunTask";
        let model = &spec.model;
        let call = self
            .client
            .run_task()
            .cluster(&spec.cluster)
            .task_definition(&spec.task_definition)
            .count(count as i32)
            .client_token(client_token)
            .started_by(&spec.started_by)
            .set_overrides(translator::task_override(model)?)
            .set_launch_type(model.launch_type.as_deref().map(LaunchType::from))
            .set_capacity_provider_strategy(translator::capacity_provider_strategy(model)?)
            .set_platform_version(model.platform_version.clone())
            .set_network_configuration(translator::network_configuration(model)?)
            .set_placement_constraints(translator::placement_constraints(model))
            .set_placement_strategy(translator::placement_strategy(model))
            .set_group(model.group.clone())
            .set_enable_execute_command(model.enable_execute_command)
            .set_enable_ecs_managed_tags(model.enable_ecs_managed_tags)
            .set_propagate_tags(model.propagate_tags.as_deref().map(PropagateTags::from))
            .set_tags(translator::tags(&spec.tags));
        by_deadline(OP, by, async {
            match call.send().await {
                Ok(out) => Ok(Launched {
                    task_arns: out
                        .tasks()
                        .iter()
                        .filter_map(|t| t.task_arn())
                        .map(str::to_string)
                        .collect(),
                    not_placed: out
                        .failures()
                        .iter()
                        .map(translator::placement_failure)
                        .collect(),
                }),
                // The token was used before (a redelivered invocation): ECS names the tasks
                // it started the first time.
                Err(e) => match conflict_task_arns(&e) {
                    Some(task_arns) => Ok(Launched {
                        task_arns,
                        not_placed: Vec::new(),
                    }),
                    None => Err(fault(OP, e)),
                },
            }
        })
        .await
    }

    async fn start_task(
        &self,
        spec: &LaunchSpec,
        instances: &[String],
        attempt: &str,
        by: f64,
    ) -> Result<Launched, Fault> {
        const OP: &str = "ecs:StartTask";
        let model = &spec.model;
        let mut tags = spec.tags.clone();
        tags.push((ATTEMPT_TAG.to_string(), attempt.to_string()));
        let call = self
            .client
            .start_task()
            .cluster(&spec.cluster)
            .task_definition(&spec.task_definition)
            .set_container_instances(Some(instances.to_vec()))
            .started_by(&spec.started_by)
            .set_overrides(translator::task_override(model)?)
            .set_network_configuration(translator::network_configuration(model)?)
            .set_group(model.group.clone())
            .set_enable_execute_command(model.enable_execute_command)
            .set_enable_ecs_managed_tags(model.enable_ecs_managed_tags)
            .set_propagate_tags(model.propagate_tags.as_deref().map(PropagateTags::from))
            .set_tags(translator::tags(&tags))
            .customize()
            .config_override(no_retries());
        by_deadline(OP, by, async {
            let out = call.send().await.map_err(|e| fault(OP, e))?;
            Ok(Launched {
                task_arns: out
                    .tasks()
                    .iter()
                    .filter_map(|t| t.task_arn())
                    .map(str::to_string)
                    .collect(),
                not_placed: out
                    .failures()
                    .iter()
                    .map(translator::placement_failure)
                    .collect(),
            })
        })
        .await
    }

    async fn find_started(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> Result<Vec<StartedTask>, Fault> {
        const OP: &str = "ecs:ListTasks";
        by_deadline(OP, by, async {
            let mut candidates = self.list(cluster, started_by, None).await?;
            candidates.extend(
                self.list(cluster, started_by, Some(DesiredStatus::Stopped))
                    .await?,
            );
            let mut found = Vec::new();
            for chunk in candidates.chunks(100) {
                let out = self
                    .client
                    .describe_tasks()
                    .cluster(cluster)
                    .set_tasks(Some(chunk.to_vec()))
                    .include(TaskField::Tags)
                    .send()
                    .await
                    .map_err(|e| fault("ecs:DescribeTasks", e))?;
                found.extend(out.tasks().iter().filter_map(|t| {
                    Some(StartedTask {
                        arn: t.task_arn()?.to_string(),
                        created_at: t.created_at().map(|at| at.as_secs_f64()),
                        attempt: t
                            .tags()
                            .iter()
                            .find(|tag| tag.key() == Some(ATTEMPT_TAG))
                            .and_then(|tag| tag.value())
                            .map(str::to_string),
                    })
                }));
            }
            Ok(found)
        })
        .await
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
        by: f64,
    ) -> Result<Described, Fault> {
        const OP: &str = "ecs:DescribeTasks";
        if arns.is_empty() {
            return Ok(Described::default());
        }
        by_deadline(OP, by, async {
            let out = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(arns.to_vec()))
                .send()
                .await
                .map_err(|e| fault(OP, e))?;
            Ok(Described {
                tasks: out.tasks().iter().map(translator::observe).collect(),
                missing: out
                    .failures()
                    .iter()
                    .filter_map(|f| f.arn())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .await
    }

    async fn stop_task(
        &self,
        cluster: &str,
        arn: &str,
        reason: &str,
        by: f64,
    ) -> Result<(), Fault> {
        const OP: &str = "ecs:StopTask";
        by_deadline(OP, by, async {
            self.client
                .stop_task()
                .cluster(cluster)
                .task(arn)
                .reason(reason)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| fault(OP, e))
        })
        .await
    }

    async fn log_page(&self, query: &LogPageQuery, by: f64) -> Result<Option<LogPage>, Fault> {
        const OP: &str = "logs:GetLogEvents";
        let mut call = self
            .logs
            .get_log_events()
            .log_group_name(&query.group)
            .log_stream_name(&query.stream)
            // The latest events first, then backward with nextBackwardToken.
            .start_from_head(false)
            .set_start_time(query.start_time_ms)
            .set_next_token(query.token.clone())
            .limit(query.limit.clamp(1, 10_000) as i32)
            .customize();
        // awslogs may write to another region than the one the stack is in.
        if let Some(region) = query
            .region
            .as_deref()
            .filter(|r| handler_kit::aws::valid_region(r))
        {
            call = call.config_override(aws_sdk_cloudwatchlogs::config::Builder::default().region(
                aws_sdk_cloudwatchlogs::config::Region::new(region.to_string()),
            ));
        }
        by_deadline(OP, by, async {
            match call.send().await {
                Ok(out) => Ok(Some(LogPage {
                    messages: out
                        .events()
                        .iter()
                        .filter_map(|e| e.message())
                        .map(str::to_string)
                        .collect(),
                    backward_token: out.next_backward_token().map(str::to_string),
                })),
                Err(e) => match fault(OP, e) {
                    f if f.kind == FaultKind::NotFound => Ok(None),
                    f => Err(f),
                },
            }
        })
        .await
    }

    async fn stack_status(&self, stack_id: &str, by: f64) -> Result<Option<String>, Fault> {
        const OP: &str = "cloudformation:DescribeStacks";
        by_deadline(OP, by, async {
            match self
                .stacks
                .describe_stacks()
                .stack_name(stack_id)
                .send()
                .await
            {
                Ok(out) => Ok(out
                    .stacks()
                    .first()
                    .and_then(|s| s.stack_status())
                    .map(|s| s.as_str().to_string())),
                // CloudFormation API Reference, DescribeStacks: an unknown stack is a
                // ValidationError "Stack with id ... does not exist".
                Err(e) => match fault(OP, e) {
                    f if f.message.contains("does not exist") => Ok(None),
                    f => Err(f),
                },
            }
        })
        .await
    }

    async fn list_running(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> Result<Vec<String>, Fault> {
        by_deadline("ecs:ListTasks", by, self.list(cluster, started_by, None)).await
    }
}

impl SdkEcs {
    /// ListTasks by `startedBy`. "When you specify startedBy as the filter, it must be the
    /// only filter that you use" (ECS API Reference, ListTasks): so the running tasks are
    /// asked for with `startedBy` alone (documented: the default status filter is RUNNING).
    /// The stopped ones need `desiredStatus: STOPPED` beside it, which the reference does
    /// not list but ECS accepts (observed: Apache Airflow's ECS operator has sent
    /// `startedBy` with `desiredStatus` since 2023; the refusal seen in aws-sdk-go-v2#1893
    /// is for `family`/`launchType` with `startedBy`). Nothing else is ever combined.
    async fn list(
        &self,
        cluster: &str,
        started_by: &str,
        status: Option<DesiredStatus>,
    ) -> Result<Vec<String>, Fault> {
        const OP: &str = "ecs:ListTasks";
        let mut arns = Vec::new();
        let mut token: Option<String> = None;
        // A TaskRun starts at most a few hundred tasks: a few pages at most.
        for _ in 0..20 {
            let out = self
                .client
                .list_tasks()
                .cluster(cluster)
                .started_by(started_by)
                .set_desired_status(status.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| fault(OP, e))?;
            arns.extend(out.task_arns().iter().cloned());
            match out.next_token() {
                Some(next) => token = Some(next.to_string()),
                None => break,
            }
        }
        Ok(arns)
    }
}

fn conflict_task_arns(
    error: &aws_sdk_ecs::error::SdkError<aws_sdk_ecs::operation::run_task::RunTaskError>,
) -> Option<Vec<String>> {
    match error.as_service_error() {
        Some(aws_sdk_ecs::operation::run_task::RunTaskError::ConflictException(conflict))
            if !conflict.resource_ids().is_empty() =>
        {
            Some(conflict.resource_ids().to_vec())
        }
        _ => None,
    }
}
