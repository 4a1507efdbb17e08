use cfn_protocol::ProgressEvent;
use serde_json::Value;

use super::{desired_model, requested_id, run, typed, Env};
use crate::error::TaskRunError;
use crate::model::ResourceModel;
use crate::model::UpdateCriterion;
use crate::record::{without_read_only, RunRecord, RunStatus};
use crate::update_criteria::{changed_keys, snapshot, triggers_changed, EnvSnapshot};

enum Decision {
    Skip(String),
    Run(String),
}

pub async fn handle(env: &Env<'_>) -> Result<ProgressEvent, TaskRunError> {
    let (properties, model) = desired_model(env)?;
    let id = requested_id(env)?;
    let Some(mut record) = env.store.get(&id).await? else {
        return Err(TaskRunError::NotFound(id));
    };
    let token = env.operation_token();
    if record.run.token == token {
        tracing::info!(id = %id, "redelivered UPDATE: resuming the run it started");
        return run::report(env, record).await;
    }
    let mut previous = env
        .request
        .previous_properties()
        .unwrap_or_else(|| record.properties.clone());
    // CloudFormation sends the previous properties with string scalars too: read them as
    // the desired ones are read, or they would not parse and look like an empty model.
    let schema = crate::schema::schema()?;
    cfn_protocol::lenient::coerce_to_schema(&mut previous, schema, schema);
    match decide(env, &record, &previous, &properties, &model).await? {
        Decision::Skip(why) => {
            tracing::info!(id = %id, why = %why, "update does not run the tasks");
            record.properties = without_read_only(&properties);
            env.store.put(&record).await?;
            Ok(ProgressEvent::success(record.model()).with_message(why))
        }
        Decision::Run(why) => {
            tracing::info!(id = %id, why = %why, "update runs the tasks");
            if record.run.status == RunStatus::Running {
                let reason = format!("Org::ECS::TaskRun {id}: superseded by an update");
                // Recorded first, so that a new run that fails to start leaves no run
                // marked RUNNING with stopped tasks.
                record
                    .run
                    .finish(RunStatus::Failed, Some(reason.clone()), &[], env.now);
                env.store.put(&record).await?;
                run::stop_tasks(
                    env,
                    &run::cluster_of(&record),
                    &record.run.task_arns(),
                    &reason,
                )
                .await;
            }
            Ok(run::start(env, &id, &properties, &model, token)
                .await?
                .with_message(why))
        }
    }
}

async fn decide(
    env: &Env<'_>,
    record: &RunRecord,
    previous: &Value,
    desired: &Value,
    model: &ResourceModel,
) -> Result<Decision, TaskRunError> {
    if !model.run_on_update() {
        return Ok(Decision::Skip("not run: RunOnUpdate is false".into()));
    }
    if triggers_changed(previous, desired) {
        return Ok(Decision::Run("run: Triggers changed".into()));
    }
    let criteria = model.update_criteria.clone().unwrap_or_default();
    if criteria.is_empty() {
        return Ok(Decision::Run("run: the properties changed".into()));
    }
    // Compare with what the last run's tasks saw (kept in the record), not with the
    // previous properties: an update that did not run changed nothing for the database.
    let new = snapshot(
        &run::describe_task_definition(env, &model.task_definition).await?,
        model,
    );
    if let Some(old) = &record.run.criteria_env {
        return Ok(verdict(&criteria, old, &new));
    }
    // Runs recorded without it: the revision the last run used, and the previous overrides.
    let previous_model = typed(previous).unwrap_or_default();
    let old_reference = record
        .run
        .task_definition_arn
        .clone()
        .unwrap_or_else(|| previous_model.task_definition.clone());
    let old = match run::describe_task_definition(env, &old_reference).await {
        Ok(definition) => snapshot(&definition, &previous_model),
        Err(e) => {
            tracing::warn!(error = %e, "previous task definition unreadable; treating it as changed");
            return Ok(Decision::Run(format!(
                "run: previous task definition {old_reference} cannot be read"
            )));
        }
    };
    Ok(verdict(&criteria, &old, &new))
}

fn verdict(criteria: &[UpdateCriterion], old: &EnvSnapshot, new: &EnvSnapshot) -> Decision {
    let changed = changed_keys(criteria, old, new);
    if changed.is_empty() {
        Decision::Skip("not run: no UpdateCriteria environment value changed".into())
    } else {
        Decision::Run(format!("run: changed {}", changed.join(", ")))
    }
}
