//! Between the plain data of the gateway and the ECS SDK: the model's PascalCase shapes
//! become SDK request types, and ECS's answers become the plain data the engine reads.

use aws_sdk_ecs::types as ecs;

use crate::ecs::{AwsLogs, ContainerInfo, Fault, FaultKind, TaskDefinitionInfo};
use crate::model::{self, ResourceModel};
use crate::outcome::{ContainerState, TaskState};

fn invalid(what: &str, e: impl std::fmt::Display) -> Fault {
    Fault::new("ecs:RunTask", FaultKind::BadRequest, format!("{what}: {e}"))
}

pub fn task_override(model: &ResourceModel) -> Result<Option<ecs::TaskOverride>, Fault> {
    let Some(o) = &model.overrides else {
        return Ok(None);
    };
    let containers = o
        .container_overrides
        .iter()
        .flatten()
        .map(container_override)
        .collect::<Result<Vec<_>, _>>()?;
    let storage = o.ephemeral_storage.as_ref().map(|s| {
        ecs::EphemeralStorage::builder()
            .size_in_gib(s.size_in_gib)
            .build()
    });
    Ok(Some(
        ecs::TaskOverride::builder()
            .set_container_overrides((!containers.is_empty()).then_some(containers))
            .set_cpu(o.cpu.clone())
            .set_memory(o.memory.clone())
            .set_task_role_arn(o.task_role_arn.clone())
            .set_execution_role_arn(o.execution_role_arn.clone())
            .set_ephemeral_storage(storage)
            .build(),
    ))
}

fn container_override(c: &model::ContainerOverride) -> Result<ecs::ContainerOverride, Fault> {
    let environment = c.environment.as_ref().map(|env| {
        env.iter()
            .map(|kv| {
                ecs::KeyValuePair::builder()
                    .name(kv.name.clone())
                    .set_value(kv.value.clone())
                    .build()
            })
            .collect::<Vec<_>>()
    });
    let files = c
        .environment_files
        .iter()
        .flatten()
        .map(|f| {
            ecs::EnvironmentFile::builder()
                .r#type(ecs::EnvironmentFileType::from(f.r#type.as_str()))
                .value(f.value.clone())
                .build()
                .map_err(|e| invalid("EnvironmentFiles", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let requirements = c
        .resource_requirements
        .iter()
        .flatten()
        .map(|r| {
            ecs::ResourceRequirement::builder()
                .r#type(ecs::ResourceType::from(r.r#type.as_str()))
                .value(r.value.clone())
                .build()
                .map_err(|e| invalid("ResourceRequirements", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ecs::ContainerOverride::builder()
        .name(c.name.clone())
        .set_command(c.command.clone())
        .set_environment(environment)
        .set_environment_files((!files.is_empty()).then_some(files))
        .set_cpu(c.cpu)
        .set_memory(c.memory)
        .set_memory_reservation(c.memory_reservation)
        .set_resource_requirements((!requirements.is_empty()).then_some(requirements))
        .build())
}

pub fn network_configuration(
    model: &ResourceModel,
) -> Result<Option<ecs::NetworkConfiguration>, Fault> {
    let Some(n) = &model.network_configuration else {
        return Ok(None);
    };
    let vpc = &n.awsvpc_configuration;
    let awsvpc = ecs::AwsVpcConfiguration::builder()
        .set_subnets(Some(vpc.subnets.clone()))
        .set_security_groups(vpc.security_groups.clone())
        .set_assign_public_ip(
            vpc.assign_public_ip
                .as_deref()
                .map(ecs::AssignPublicIp::from),
        )
        .build()
        .map_err(|e| invalid("NetworkConfiguration", e))?;
    Ok(Some(
        ecs::NetworkConfiguration::builder()
            .awsvpc_configuration(awsvpc)
            .build(),
    ))
}

pub fn capacity_provider_strategy(
    model: &ResourceModel,
) -> Result<Option<Vec<ecs::CapacityProviderStrategyItem>>, Fault> {
    model
        .capacity_provider_strategy
        .as_ref()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    // Only what the user gave: an omitted weight and base are 0 to ECS
                    // anyway, and "only one capacity provider in a capacity provider
                    // strategy can have a base defined" (ECS API Reference,
                    // CapacityProviderStrategyItem), so a base of 0 is not sent.
                    ecs::CapacityProviderStrategyItem::builder()
                        .capacity_provider(i.capacity_provider.clone())
                        .set_weight(i.weight)
                        .set_base(i.base.filter(|b| *b > 0))
                        .build()
                        .map_err(|e| invalid("CapacityProviderStrategy", e))
                })
                .collect()
        })
        .transpose()
}

pub fn placement_constraints(model: &ResourceModel) -> Option<Vec<ecs::PlacementConstraint>> {
    model.placement_constraints.as_ref().map(|items| {
        items
            .iter()
            .map(|c| {
                ecs::PlacementConstraint::builder()
                    .r#type(ecs::PlacementConstraintType::from(c.r#type.as_str()))
                    .set_expression(c.expression.clone())
                    .build()
            })
            .collect()
    })
}

pub fn placement_strategy(model: &ResourceModel) -> Option<Vec<ecs::PlacementStrategy>> {
    model.placement_strategy.as_ref().map(|items| {
        items
            .iter()
            .map(|s| {
                ecs::PlacementStrategy::builder()
                    .r#type(ecs::PlacementStrategyType::from(s.r#type.as_str()))
                    .set_field(s.field.clone())
                    .build()
            })
            .collect()
    })
}

pub fn tags(pairs: &[(String, String)]) -> Option<Vec<ecs::Tag>> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| ecs::Tag::builder().key(k).value(v).build())
            .collect()
    })
}

/// A task definition as the plain data a run needs.
pub fn task_definition(definition: &ecs::TaskDefinition) -> TaskDefinitionInfo {
    TaskDefinitionInfo {
        arn: definition
            .task_definition_arn()
            .unwrap_or_default()
            .to_string(),
        containers: definition
            .container_definitions()
            .iter()
            .map(|c| ContainerInfo {
                name: c.name().unwrap_or_default().to_string(),
                // Essential unless said otherwise, as ECS has it.
                essential: c.essential().unwrap_or(true),
                environment: c
                    .environment()
                    .iter()
                    .filter_map(|kv| {
                        Some((
                            kv.name()?.to_string(),
                            kv.value().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect(),
                awslogs: c.log_configuration().and_then(|log| {
                    if log.log_driver().as_str() != "awslogs" {
                        return None;
                    }
                    let options = log.options()?;
                    Some(AwsLogs {
                        group: options.get("awslogs-group")?.clone(),
                        stream_prefix: options.get("awslogs-stream-prefix").cloned(),
                        region: options.get("awslogs-region").cloned(),
                    })
                }),
            })
            .collect(),
    }
}

/// ECS's description of a task as the plain data the decision works on.
pub fn observe(task: &ecs::Task) -> TaskState {
    TaskState {
        arn: task.task_arn().unwrap_or_default().to_string(),
        last_status: task.last_status().unwrap_or_default().to_string(),
        stop_code: task.stop_code().map(|c| c.as_str().to_string()),
        stopped_reason: task.stopped_reason().map(str::to_string),
        started: task.started_at().is_some(),
        stopped_at: task
            .execution_stopped_at()
            .or(task.stopped_at())
            .map(|at| at.as_secs_f64()),
        containers: task
            .containers()
            .iter()
            .map(|c| ContainerState {
                name: c.name().unwrap_or_default().to_string(),
                exit_code: c.exit_code(),
                reason: c.reason().map(str::to_string),
            })
            .collect(),
    }
}

/// One line for a task RunTask or StartTask could not start.
pub fn placement_failure(failure: &ecs::Failure) -> String {
    let mut line = format!(
        "task not placed: {}",
        failure.reason().unwrap_or("no reason given")
    );
    if let Some(detail) = failure.detail() {
        line.push_str(&format!(" ({detail})"));
    }
    if let Some(arn) = failure.arn() {
        line.push_str(&format!(" on {arn}"));
    }
    line
}
