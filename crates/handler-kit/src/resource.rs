//! A resource type as a [`cfn_protocol::Resource`]: per request, a [`Backend`] gives the
//! type's gateway (its AWS calls, as plain data) and the record store, both acting with
//! the caller's credentials, and the type's handler of the action ([`Handlers`]) runs over
//! them. What the handlers of every type share is here as methods of [`Invocation`]: the
//! operation's token and new Id, the callback context decoded, the Id a request names,
//! the type's records, and the default READ, LIST and DELETE.

use std::future::Future;
use std::marker::PhantomData;

use cfn_protocol::{Action, CredentialsProblem, HandlerRequest, ProgressEvent, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use crate::budget::Budget;
use crate::clock::{epoch_seconds, Clock};
use crate::context::Carried;
use crate::events::{EventSink, NO_EVENTS};
use crate::failure::{Failure, OwnFailure};
use crate::fault::{Fault, FaultKind};
use crate::records::{Keeps, Records, Revised, Stored};
use crate::store::ParameterStore;

/// Where a request's gateway, parameter store and clock come from.
pub trait Backend: Sync {
    /// The type's AWS calls.
    type Gateway: Send + Sync;
    /// Where the type's records live.
    type Store: ParameterStore + Send + Sync;
    /// The time the handlers go by.
    type Clock: Clock;

    /// The gateway and store for this request (with its caller's credentials).
    fn connect(
        &self,
        request: &HandlerRequest,
    ) -> impl Future<Output = Result<(Self::Gateway, Self::Store), CredentialsProblem>> + Send;

    /// The clock of every request.
    fn clock(&self) -> &Self::Clock;

    /// Where this request's events go (EventBridge, with its caller's credentials). By
    /// default nowhere: a backend of a type that sends none need not say. A sink, not a
    /// type of the backend's: the handlers of every backend hold it alike, and sending is
    /// best effort, so nothing of it reaches their signatures.
    fn events(&self, _request: &HandlerRequest) -> impl Future<Output = Box<dyn EventSink>> + Send {
        async { Box::new(crate::events::NoEvents) as Box<dyn EventSink> }
    }
}

/// What a resource type is, beyond its handlers: its own failures, its records and where
/// they are kept, and the span its handlers' logs go in.
pub trait ResourceKind: Sized + Sync + 'static {
    /// The failures that are the type's own.
    type Own: OwnFailure + Send + Sync;
    /// The durable record of one resource (keeping its latest run).
    type Record: Keeps + Send + Sync;
    /// The parameter path the records are kept under (`<path>/<id>`).
    const PARAMETER_PATH: &'static str;
    /// How many records a LIST answers at a time.
    const LIST_PAGE_SIZE: u32;
    /// What the type calls the work a record keeps, in messages ("run").
    const WORK: &'static str;

    /// The resource model of a record, as READ and LIST answer it.
    fn model(record: &Self::Record) -> Value;

    /// The span of one invocation's logs (see [`action_span!`](crate::action_span)).
    fn span(request: &HandlerRequest) -> tracing::Span;
}

/// The records of resource type `K` in `store`.
pub fn records<K: ResourceKind, S: ParameterStore>(store: &S) -> Records<'_, S, K::Record> {
    Records::new(store, K::PARAMETER_PATH, K::LIST_PAGE_SIZE)
}

/// The handlers of a resource type over gateway `G`, store `S` and clock `C`. READ, LIST
/// and DELETE have defaults: the record answered, the records listed, the record removed.
pub trait Handlers<G: Sync, S: ParameterStore, C: Clock>: ResourceKind {
    /// CREATE (a first delivery or a callback).
    fn create(
        invocation: Invocation<'_, Self, G, S, C>,
    ) -> impl Future<Output = Result<ProgressEvent, Failure<Self::Own>>> + Send;

    /// UPDATE (a first delivery or a callback).
    fn update(
        invocation: Invocation<'_, Self, G, S, C>,
    ) -> impl Future<Output = Result<ProgressEvent, Failure<Self::Own>>> + Send;

    /// DELETE: by default, the record removed and nothing else.
    fn delete(
        invocation: Invocation<'_, Self, G, S, C>,
    ) -> impl Future<Output = Result<ProgressEvent, Failure<Self::Own>>> + Send {
        async move { invocation.delete().await }
    }

    /// READ: the recorded resource.
    fn read(
        invocation: Invocation<'_, Self, G, S, C>,
    ) -> impl Future<Output = Result<ProgressEvent, Failure<Self::Own>>> + Send {
        async move { invocation.read().await }
    }

    /// LIST: a page of the recorded resources.
    fn list(
        invocation: Invocation<'_, Self, G, S, C>,
    ) -> impl Future<Output = Result<ProgressEvent, Failure<Self::Own>>> + Send {
        async move { invocation.list().await }
    }
}

/// A span for one invocation of a resource type's handlers, named `$name` (a literal),
/// with the action and whether it is a callback.
#[macro_export]
macro_rules! action_span {
    ($name:literal, $request:expr) => {
        $crate::tracing::info_span!(
            $name,
            action = $request.action.as_str(),
            resumed = $request.callback_context.is_some()
        )
    };
}

/// One invocation of a resource type `K`'s handler: the request, and what every handler
/// works with.
pub struct Invocation<'a, K, G, S, C> {
    /// The request as CloudFormation sent it.
    pub request: &'a HandlerRequest,
    /// The type's AWS calls, with the caller's credentials.
    pub gateway: &'a G,
    /// Where the records live.
    pub store: &'a S,
    /// The time the handler goes by.
    pub clock: &'a C,
    /// The time this invocation may take.
    pub budget: Budget,
    /// Where the type's events go (nowhere unless the backend says:
    /// [`Invocation::with_events`]).
    pub events: &'a dyn EventSink,
    kind: PhantomData<fn() -> K>,
}

impl<'a, K, G, S, C: Clock> Invocation<'a, K, G, S, C> {
    /// An invocation of `request`, its budget counted from now.
    pub fn new(request: &'a HandlerRequest, gateway: &'a G, store: &'a S, clock: &'a C) -> Self {
        Self {
            request,
            gateway,
            store,
            clock,
            budget: Budget::new(clock.now(), request.deadline.map(epoch_seconds)),
            events: &NO_EVENTS,
            kind: PhantomData,
        }
    }

    /// The invocation with its events sent to `events`.
    pub fn with_events(mut self, events: &'a dyn EventSink) -> Self {
        self.events = events;
        self
    }
}

impl<K: ResourceKind, G, S: ParameterStore, C: Clock> Invocation<'_, K, G, S, C> {
    /// The token that identifies this operation across redeliveries.
    pub fn operation_token(&self) -> String {
        match self
            .request
            .bearer_token
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            Some(token) => token.to_string(),
            // A hand-made event without a token: every invocation is its own operation.
            None => format!("local-{}-{}", self.budget.started, std::process::id()),
        }
    }

    /// The Id a CREATE gives its resource: the same for every delivery of the operation.
    pub fn new_id(&self) -> String {
        crate::ids::resource_id(
            <K::Own as OwnFailure>::NOUN,
            self.request.stack_id.as_deref(),
            self.request.request_data.logical_resource_id.as_deref(),
            Some(&self.operation_token()),
        )
    }

    /// The callback context this handler wrote, if the request carries one.
    pub fn context<T: DeserializeOwned>(&self) -> Result<Option<T>, Failure<K::Own>> {
        self.request
            .callback_context
            .as_ref()
            .map(|value| {
                serde_json::from_value(value.clone()).map_err(|_| {
                    Failure::InvalidRequest(
                        "callbackContext was not written by this handler".into(),
                    )
                })
            })
            .transpose()
    }

    /// The primary identifier a READ, UPDATE or DELETE names, without validating the rest.
    pub fn requested_id(&self) -> Result<String, Failure<K::Own>> {
        let id_of = |v: &Value| v.get("Id").and_then(Value::as_str).map(str::to_string);
        id_of(&self.request.desired_properties())
            .or_else(|| self.request.previous_properties().as_ref().and_then(id_of))
            .ok_or_else(|| Failure::NotFound("(no Id given)".into()))
    }

    /// The type's records in this invocation's store.
    pub fn records(&self) -> Records<'_, S, K::Record> {
        records::<K, S>(self.store)
    }

    /// The record, or NotFound; an unreadable one is an error.
    pub async fn load(&self, id: &str) -> Result<K::Record, Failure<K::Own>> {
        match self
            .records()
            .load(id, self.budget.persist_deadline())
            .await?
        {
            Stored::Record(record) => Ok(*record),
            Stored::Absent => Err(Failure::NotFound(id.to_string())),
            Stored::Unreadable(why) => Err(Failure::CorruptRecord {
                id: id.to_string(),
                why,
            }),
        }
    }

    /// The record of an earlier delivery of this same first CREATE (the run it started,
    /// to carry on with), or `None` when `id` has no record yet; AlreadyExists when its
    /// record is another operation's (or unreadable).
    pub async fn earlier_delivery(
        &self,
        id: &str,
        token: &str,
    ) -> Result<Option<K::Record>, Failure<K::Own>> {
        match self
            .records()
            .load(id, self.budget.persist_deadline())
            .await?
        {
            Stored::Record(record) if record.run().token() == token => Ok(Some(*record)),
            Stored::Record(_) | Stored::Unreadable(_) => {
                Err(Failure::AlreadyExists(id.to_string()))
            }
            Stored::Absent => Ok(None),
        }
    }

    /// A step that met a passing fault (the record could not be read or written) answers
    /// IN_PROGRESS with its callback context `context` (of the resource `id`), to try
    /// again at the next callback: a retriable FAILED would have CloudFormation start the
    /// operation over. Not for ever: past the context's give-up time (`retry` gives its
    /// give-up time and its count of throttled tries in a row) the operation fails with
    /// `give_up`'s failure. Throttled time does not count toward giving up: a deploy of
    /// many resources at once waits its turn at the account's bucket, and fails only if
    /// CloudFormation's own timeout passes.
    pub fn ride_out<T: Carried + Clone>(
        &self,
        id: &str,
        context: &T,
        retry: fn(&mut T) -> (&mut f64, &mut u8),
        result: Result<ProgressEvent, Failure<K::Own>>,
        give_up: impl FnOnce(&Fault) -> Failure<K::Own>,
    ) -> Result<ProgressEvent, Failure<K::Own>> {
        match result {
            Err(Failure::Aws(fault)) if fault.is_transient() => {
                self.try_again(id, context, retry, &fault, give_up)
            }
            other => other,
        }
    }

    /// Answers IN_PROGRESS with `context` (of the resource `id`), to try a step that met
    /// `fault` again at the next callback; past the context's give-up time (see
    /// [`Self::ride_out`]), `give_up`'s failure instead.
    pub fn try_again<T: Carried + Clone>(
        &self,
        id: &str,
        context: &T,
        retry: fn(&mut T) -> (&mut f64, &mut u8),
        fault: &Fault,
        give_up: impl FnOnce(&Fault) -> Failure<K::Own>,
    ) -> Result<ProgressEvent, Failure<K::Own>> {
        let throttled = fault.kind == FaultKind::Throttled;
        let mut next = context.clone();
        let (give_up_at, throttled_in_a_row) = retry(&mut next);
        if self.gives_up(*give_up_at, fault) {
            return Err(give_up(fault));
        }
        tracing::warn!(id = %id, error = %fault, "trying again at the next callback");
        let model = (self.request.action != Action::Delete).then(|| {
            // The properties as given (a first step is done again from them),
            // with the Id.
            let mut model = self.request.desired_properties();
            if let Some(map) = model.as_object_mut() {
                map.insert("Id".into(), Value::String(id.to_string()));
            }
            model
        });
        // Throttled: back off (with every other resource of the account); else a
        // short jittered pause.
        let delay = crate::pace::retry_delay(throttled_in_a_row, throttled, id, self.clock.now());
        if throttled {
            *give_up_at += f64::from(delay);
        }
        Ok(ProgressEvent::in_progress(model, next.to_value(), delay)
            .with_message(format!("will try again: {fault}")))
    }

    /// Whether a step that met `fault` is past its give-up time `give_up_at`: throttled
    /// time never counts.
    pub fn gives_up(&self, give_up_at: f64, fault: &Fault) -> bool {
        self.clock.now() >= give_up_at && fault.kind != FaultKind::Throttled
    }

    /// The record of `id`, whose work is the one this operation (`token`) follows;
    /// Superseded when another operation has started other work since.
    pub async fn followed_record(
        &self,
        id: &str,
        token: &str,
    ) -> Result<K::Record, Failure<K::Own>> {
        let record = self.load(id).await?;
        if record.run().token() != token {
            return Err(Failure::Superseded(format!(
                "{} {id} has started another {} since this operation began",
                <K::Own as OwnFailure>::NOUN,
                K::WORK
            )));
        }
        Ok(record)
    }

    /// READ: the model of the record the request names.
    pub async fn read(&self) -> Result<ProgressEvent, Failure<K::Own>> {
        let id = self.requested_id()?;
        Ok(ProgressEvent::success(K::model(&self.load(&id).await?)))
    }

    /// LIST: a page of the records' models.
    pub async fn list(&self) -> Result<ProgressEvent, Failure<K::Own>> {
        let (found, next_token) = self
            .records()
            .list(
                self.request.next_token.as_deref(),
                self.budget.persist_deadline(),
            )
            .await?;
        Ok(ProgressEvent::listed(
            found.iter().map(K::model).collect(),
            next_token,
        ))
    }

    /// DELETE of a resource that is its record only. Never validates the properties: a
    /// stack must always be able to delete it, whatever it was given. A passing fault
    /// (throttling by the account's bucket, say) is ridden out as every other step's is,
    /// for up to [`DELETE_GIVE_UP_SECONDS`]: the deletion of a stack of many resources
    /// waits its turn rather than fails.
    pub async fn delete(&self) -> Result<ProgressEvent, Failure<K::Own>> {
        let id = self.requested_id()?;
        let retry = match self.context::<DeleteRetry>()? {
            Some(retry) => retry,
            None => DeleteRetry {
                give_up_at: self.clock.now() + DELETE_GIVE_UP_SECONDS,
                throttled: 0,
            },
        };
        let result = self.delete_record(&id).await;
        self.ride_out(
            &id,
            &retry,
            |r| (&mut r.give_up_at, &mut r.throttled),
            result,
            |fault| Failure::Aws(fault.clone()),
        )
    }

    /// Removes the record of `id`: DELETE's answer, or NotFound when there was none.
    pub async fn delete_record(&self, id: &str) -> Result<ProgressEvent, Failure<K::Own>> {
        if self
            .records()
            .delete(id, self.budget.persist_deadline())
            .await?
        {
            Ok(ProgressEvent::deleted())
        } else {
            Err(Failure::NotFound(id.to_string()))
        }
    }
}

/// How long the default DELETE rides out passing faults before it answers one.
pub const DELETE_GIVE_UP_SECONDS: f64 = 600.0;

/// The callback context of the default DELETE, which tries again after a passing fault.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRetry {
    pub give_up_at: f64,
    /// Throttled tries in a row.
    #[serde(default, skip_serializing_if = "crate::context::is_zero")]
    pub throttled: u8,
}

impl Carried for DeleteRetry {}

/// Resource type `K` as a [`Resource`], over backend `B`.
pub struct ResourceType<B, K> {
    /// Where each request's gateway, store and clock come from.
    pub backend: B,
    kind: PhantomData<fn() -> K>,
}

impl<B, K> ResourceType<B, K> {
    /// Resource type `K` over `backend`.
    pub const fn new(backend: B) -> Self {
        Self {
            backend,
            kind: PhantomData,
        }
    }
}

impl<B: Backend, K> ResourceType<B, K> {
    fn invocation<'a>(
        &'a self,
        request: &'a HandlerRequest,
        (gateway, store): &'a (B::Gateway, B::Store),
    ) -> Invocation<'a, K, B::Gateway, B::Store, B::Clock> {
        Invocation::new(request, gateway, store, self.backend.clock())
    }
}

impl<B: Backend, K: Handlers<B::Gateway, B::Store, B::Clock>> Resource for ResourceType<B, K> {
    type Error = Failure<K::Own>;

    async fn create(&self, request: &HandlerRequest) -> Result<ProgressEvent, Self::Error> {
        let connected = self.backend.connect(request).await?;
        let events = self.backend.events(request).await;
        K::create(self.invocation(request, &connected).with_events(&*events))
            .instrument(K::span(request))
            .await
    }

    async fn read(&self, request: &HandlerRequest) -> Result<ProgressEvent, Self::Error> {
        let connected = self.backend.connect(request).await?;
        K::read(self.invocation(request, &connected))
            .instrument(K::span(request))
            .await
    }

    async fn update(&self, request: &HandlerRequest) -> Result<ProgressEvent, Self::Error> {
        let connected = self.backend.connect(request).await?;
        let events = self.backend.events(request).await;
        K::update(self.invocation(request, &connected).with_events(&*events))
            .instrument(K::span(request))
            .await
    }

    async fn delete(&self, request: &HandlerRequest) -> Result<ProgressEvent, Self::Error> {
        let connected = self.backend.connect(request).await?;
        let events = self.backend.events(request).await;
        K::delete(self.invocation(request, &connected).with_events(&*events))
            .instrument(K::span(request))
            .await
    }

    async fn list(&self, request: &HandlerRequest) -> Result<ProgressEvent, Self::Error> {
        let connected = self.backend.connect(request).await?;
        K::list(self.invocation(request, &connected))
            .instrument(K::span(request))
            .await
    }
}
