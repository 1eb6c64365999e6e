//! The NATS side: the stream that carries the journal, the bucket that holds the lease, and
//! the few calls the engine makes on them. Everything here is I/O; the rules (what a frame is,
//! when a node may lead) are in [`crate::frame`] and the engine.

use async_nats::jetstream::{self, consumer, kv, stream};
use futures::StreamExt;
use std::time::Duration;

/// How long a publish waits for the quorum's acknowledgement before it is asked again.
pub const PUBLISH_ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// A stream's duplicate window: a frame published again within it (a retry after a lost
/// acknowledgement) is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long one read of the lease may take before it is asked again.
const LEASE_READ_TIMEOUT: Duration = Duration::from_millis(300);
/// A Raft follower at most this many entries behind its leader may take the leadership over:
/// a few ms of writes under load.
const PLACEMENT_LAG_MAX: u64 = 1_000;
/// ... and heard from this recently: under load a follower is heard from every few ms, and a
/// server that died a moment ago has been silent since (NATS's Raft heartbeats come every
/// second, so an idle group may wait a round or two for its move).
const PLACEMENT_SILENCE_MAX: Duration = Duration::from_millis(500);
/// The lease's key in its bucket.
const LEASE_KEY: &str = "leader";

#[derive(Clone, Debug)]
pub struct Options {
    /// `nats://host:port`, several separated by commas.
    pub url: String,
    /// The stream's name; its subject is `<stream>.journal`, its lease bucket `<stream>_lease`.
    pub stream: String,
    /// Replicas of the stream and of the lease bucket (3 in production; 1 for a lone server).
    pub replicas: usize,
    /// How long a lease lasts without being renewed.
    pub lease_ttl: Duration,
}

impl Options {
    pub fn new(url: &str) -> Options {
        Options {
            url: url.to_owned(),
            stream: "ELEVENS".into(),
            replicas: 3,
            lease_ttl: Duration::from_millis(1_000),
        }
    }

    pub fn subject(&self) -> String {
        format!("{}.journal", self.stream)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("connecting to {url}: {why}")]
    Connect { url: String, why: String },
    #[error("{what}: {why}")]
    Call { what: &'static str, why: String },
}

fn call<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> NatsError {
    move |e| NatsError::Call { what, why: e.to_string() }
}

/// The connection, the journal's stream and the lease's bucket.
#[derive(Clone)]
pub struct Nats {
    pub options: Options,
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    stream: stream::Stream,
    lease: kv::Store,
    /// This node's own server's name, once learnt (see [`Nats::local_server`]).
    local_server: std::sync::Arc<std::sync::OnceLock<String>>,
}

/// Whether an existing lease bucket already has the settings `wanted` gives it.
fn same_lease_settings(store: &kv::Store, wanted: &kv::Config) -> bool {
    let config = &store.stream.cached_info().config;
    config.max_age == wanted.max_age && config.num_replicas == wanted.num_replicas
}

/// What a publish did.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored by the quorum at this stream sequence (maybe earlier, if it was a retry).
    At(u64),
    /// The stream's last sequence was not the one expected: another process appended. The
    /// publisher is no longer the leader.
    Fenced,
}

impl Nats {
    /// Connects (retrying until the servers answer) and makes sure the stream and the bucket
    /// exist with the settings the journal needs (file storage, `replicas`, `discard: new`, no
    /// age limit, no deletes).
    pub async fn connect(options: Options) -> Result<Nats, NatsError> {
        let servers = options
            .url
            .split(',')
            .map(|url| url.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NatsError::Connect { url: options.url.clone(), why: e.to_string() })?;
        // The servers in the order given: a node lists its own machine's first.
        let client = async_nats::ConnectOptions::new()
            .retain_servers_order()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .name("elevens")
            .connect(servers)
            .await
            .map_err(|e| NatsError::Connect { url: options.url.clone(), why: e.to_string() })?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(PUBLISH_ACK_TIMEOUT);
        let config = stream::Config {
            name: options.stream.clone(),
            subjects: vec![options.subject()],
            storage: stream::StorageType::File,
            num_replicas: options.replicas,
            discard: stream::DiscardPolicy::New,
            retention: stream::RetentionPolicy::Limits,
            duplicate_window: DUPLICATE_WINDOW,
            deny_delete: true,
            allow_direct: true,
            max_message_size: (crate::frame::FRAME_BYTES_MAX + 4096) as i32,
            ..Default::default()
        };
        let stream =
            retry("creating the journal's stream", || jetstream.get_or_create_stream(config.clone())).await?;
        let bucket = kv::Config {
            bucket: format!("{}_lease", options.stream),
            history: 1,
            max_age: options.lease_ttl,
            storage: stream::StorageType::File,
            num_replicas: options.replicas,
            ..Default::default()
        };
        // A bucket that exists with these settings is opened as it is: its info is answered by
        // its own Raft leader, while a create or update goes through JetStream's meta leader,
        // which may be on the machine just lost (a node restarting then would wait out NATS's
        // election, 4 to 9 s, before it serves).
        let lease = retry("opening the lease's bucket", || async {
            match jetstream.get_key_value(&bucket.bucket).await {
                Ok(store) if same_lease_settings(&store, &bucket) => Ok(store),
                _ => jetstream.create_or_update_key_value(bucket.clone()).await.map_err(|e| e.to_string()),
            }
        })
        .await?;
        Ok(Nats { options, client, jetstream, stream, lease, local_server: Default::default() })
    }

    /// Publishes a frame, with the stream's last sequence expected before it and an id that
    /// makes a retry idempotent; the returned future resolves once the quorum has stored it.
    pub async fn publish(
        &self,
        frame: bytes::Bytes,
        id: &str,
        expected_last: u64,
    ) -> Result<jetstream::context::PublishAckFuture, NatsError> {
        let publish = jetstream::message::PublishMessage::build()
            .payload(frame)
            .message_id(id)
            .expected_last_sequence(expected_last);
        // Bounded like the acknowledgement: a client that cannot reach a server must not hold
        // the writer, which would keep a leader without quorum looking writable.
        let sent = tokio::time::timeout(
            PUBLISH_ACK_TIMEOUT,
            self.jetstream.send_publish(self.options.subject(), publish),
        );
        match sent.await {
            Ok(sent) => sent.map_err(call("publishing a frame")),
            Err(_) => Err(NatsError::Call { what: "publishing a frame", why: "timed out".into() }),
        }
    }

    /// The stream's last sequence (0 if empty).
    pub async fn last_seq(&self) -> Result<u64, NatsError> {
        let info = self.stream.get_info().await.map_err(call("reading the stream's state"))?;
        Ok(info.state.last_sequence)
    }

    /// The stream's messages from `after + 1` on, in order, waiting for new ones at the end.
    pub async fn follow(
        &self,
        after: u64,
    ) -> Result<impl futures::Stream<Item = Result<(u64, bytes::Bytes), NatsError>>, NatsError> {
        let consumer = self
            .stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: after + 1 },
                ..Default::default()
            })
            .await
            .map_err(call("creating the follower's consumer"))?;
        let messages = consumer.messages().await.map_err(call("following the stream"))?;
        Ok(messages.map(|message| {
            let message = message.map_err(call("reading the stream"))?;
            let seq = message.info().map_err(call("reading a message's sequence"))?.stream_sequence;
            Ok((seq, message.payload.clone()))
        }))
    }

    /// One message by its stream sequence.
    pub async fn get(&self, seq: u64) -> Result<bytes::Bytes, NatsError> {
        let message = self.stream.direct_get(seq).await.map_err(call("reading a message"))?;
        Ok(message.payload)
    }

    /// The message at `seq` as the stream's leader has it. A direct get ([`Nats::get`]) may be
    /// answered by any replica, and one that has not caught up (just after a partition heals)
    /// answers "not found" for a message every acknowledged write is in: a read that must see
    /// them all (the audit) asks the leader.
    pub async fn get_from_leader(&self, seq: u64) -> Result<bytes::Bytes, NatsError> {
        let message =
            self.stream.get_raw_message(seq).await.map_err(call("reading a message from the leader"))?;
        Ok(message.payload)
    }

    /// The lease as it is: its holder's value and revision, `None` if nobody holds it.
    pub async fn lease(&self) -> Result<Option<(bytes::Bytes, u64)>, NatsError> {
        // Bounded well under the client's timeout: a direct get may be routed to a replica cut
        // off by a partition (its route looks alive until NATS's pings give up on it), and a
        // standby that waits 2 s for it instead of asking again takes the lease that much later.
        let entry = tokio::time::timeout(LEASE_READ_TIMEOUT, self.lease.entry(LEASE_KEY))
            .await
            .map_err(|_| NatsError::Call { what: "reading the lease", why: "timed out".into() })?
            .map_err(call("reading the lease"))?;
        Ok(entry.filter(|e| e.operation == kv::Operation::Put).map(|e| (e.value, e.revision)))
    }

    /// Takes the lease if nobody holds it: its revision (the new leader's term), or `None`.
    pub async fn take_lease(&self, holder: bytes::Bytes) -> Result<Option<u64>, NatsError> {
        match self.lease.create(LEASE_KEY, holder).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(call("taking the lease")(e)),
        }
    }

    /// Renews a lease held at `revision`: the new revision, or `None` if it is not held there
    /// any more (it lapsed, or another node took it).
    pub async fn renew_lease(&self, holder: bytes::Bytes, revision: u64) -> Result<Option<u64>, NatsError> {
        match self.lease.update(LEASE_KEY, holder, revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(call("renewing the lease")(e)),
        }
    }
}

/// What an acknowledgement says: stored, fenced, or not known (to be asked again).
pub async fn acknowledged(ack: jetstream::context::PublishAckFuture) -> Result<Appended, NatsError> {
    use jetstream::context::PublishErrorKind;
    match ack.await {
        Ok(ack) => Ok(Appended::At(ack.sequence)),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(Appended::Fenced),
        Err(e) => Err(call("waiting for the quorum")(e)),
    }
}

/// Calls `f` until it succeeds, for at most a minute: a cluster that is still electing its
/// stream leader answers the first calls with errors.
async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &'static str,
    mut f: impl FnMut() -> F,
) -> Result<T, NatsError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match f().await {
            Ok(value) => return Ok(value),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(call(what)(e)),
            Err(e) => {
                tracing::info!(what, error = %e, "NATS not ready; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

impl Nats {
    /// Gives a lease held at `revision` up (a clean stop), so a standby need not wait it out.
    pub async fn release_lease(&self, revision: u64) -> Result<(), NatsError> {
        self.lease
            .delete_expect_revision(LEASE_KEY, Some(revision))
            .await
            .map_err(call("releasing the lease"))
    }
}

/// What [`Nats::lead_elsewhere`] did, for the logs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// This node's own server (its machine's; empty if it could not be reached).
    pub server: String,
    /// The groups asked to elect a leader elsewhere.
    pub moved: Vec<String>,
}

impl Nats {
    /// The name of this node's own NATS server: the first of its URLs (a node lists its own
    /// machine's first), learnt once by a connection of its own, as the node's connection may
    /// be on another server; `None` while that server cannot be reached.
    pub async fn local_server(&self) -> Option<String> {
        if let Some(name) = self.local_server.get() {
            return Some(name.clone());
        }
        let url = self.options.url.split(',').next()?.trim().to_owned();
        let probe =
            async_nats::ConnectOptions::new().connection_timeout(Duration::from_millis(500)).connect(url);
        let client = tokio::time::timeout(Duration::from_secs(1), probe).await.ok()?.ok()?;
        let name = client.server_info().server_name;
        drop(client);
        Some(self.local_server.get_or_init(|| name).clone())
    }

    /// Asks the journal's stream and the lease's bucket to elect their Raft leaders on another
    /// server when this node's server leads them, so that losing this node's machine (the
    /// elevens leader and its NATS server together) never also loses a Raft leader: NATS
    /// replaces a lost leader only after its followers' election timeout, 4 to 9 s and not
    /// configurable (`minElectionTimeout`, `maxElectionTimeout` in nats-server's raft.go),
    /// while a group that keeps its leader and a quorum goes on at once. A step-down
    /// (`$JS.API.STREAM.LEADER.STEPDOWN.<stream>`) hands the leadership to a current follower in
    /// a few hundred ms. JetStream's meta group cannot be moved this way (its step-down is the
    /// system account's), and is not on the path of a write or of a lease taken over.
    pub async fn lead_elsewhere(&self) -> Result<Placement, NatsError> {
        let Some(server) = self.local_server().await else { return Ok(Placement::default()) };
        let mut placement = Placement { server: server.clone(), ..Placement::default() };
        for name in [self.options.stream.clone(), format!("KV_{}_lease", self.options.stream)] {
            let mut stream =
                self.jetstream.get_stream(&name).await.map_err(call("reading a stream's leader"))?;
            let info = stream.info().await.map_err(call("reading a stream's leader"))?;
            let Some(cluster) = info.cluster.as_ref() else { continue };
            // Only with every replica up to date, and to the closest by name: a step-down with
            // a replica down or catching up (a server just lost, or just back) may leave the
            // group to an election that waits out NATS's timeout, stalling the writes it meant
            // to save; to one that died a moment ago, it waits out NATS's election. Raft's own
            // `current` (a follower's last index at or past the leader's applied one) is false
            // under load for a follower a few entries behind, and true for one just dead, so
            // the lag and the time since the replica was last heard from judge the group; the
            // new leader must also be current now (a server just back, still catching up its
            // store, has a small lag and stalls the writes it takes over), the one heard from
            // last among those.
            let up_to_date = |r: &&stream::PeerInfo| {
                !r.offline && r.active <= PLACEMENT_SILENCE_MAX && r.lag.unwrap_or(0) <= PLACEMENT_LAG_MAX
            };
            let healthy = cluster.replicas.len() + 1 >= self.options.replicas
                && cluster.replicas.iter().all(|r| up_to_date(&r));
            let to = cluster
                .replicas
                .iter()
                .filter(|r| r.current && up_to_date(r))
                .min_by_key(|r| r.active)
                .filter(|_| healthy);
            if let (true, Some(to)) = (cluster.leader.as_deref() == Some(server.as_str()), to) {
                let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{name}");
                let body = serde_json::json!({"placement": {"preferred": to.name}}).to_string();
                self.client.request(subject, body.into()).await.map_err(call("stepping a leader down"))?;
                placement.moved.push(name);
            }
        }
        Ok(placement)
    }
}

/// A plain JetStream context on the first server, for the bench's calls.
async fn context(options: &Options) -> Result<jetstream::Context, NatsError> {
    let url = options.url.split(',').next().unwrap_or_default().trim();
    let client = async_nats::connect(url)
        .await
        .map_err(|e| NatsError::Connect { url: options.url.clone(), why: e.to_string() })?;
    Ok(jetstream::new(client))
}

/// Deletes a stream and its lease bucket. For scratch streams only (the bench's): the engine
/// never deletes its own.
pub async fn delete_stream(options: &Options) -> Result<(), NatsError> {
    let jetstream = context(options).await?;
    jetstream.delete_stream(&options.stream).await.map_err(call("deleting the stream"))?;
    jetstream
        .delete_key_value(format!("{}_lease", options.stream))
        .await
        .map_err(call("deleting the lease's bucket"))?;
    Ok(())
}

/// Whether the journal's stream and the lease's bucket each have a leader and every replica
/// current: a server that came back has caught up. For the bench, between two losses.
pub async fn replicas_current(options: &Options) -> Result<bool, NatsError> {
    let jetstream = context(options).await?;
    for name in [options.stream.clone(), format!("KV_{}_lease", options.stream)] {
        let mut stream = jetstream.get_stream(&name).await.map_err(call("reading a stream's replicas"))?;
        let info = stream.info().await.map_err(call("reading a stream's replicas"))?;
        let Some(cluster) = info.cluster.as_ref() else { return Ok(false) };
        let current = cluster.replicas.iter().filter(|r| r.current).count();
        if cluster.leader.is_none() || current + 1 < options.replicas {
            return Ok(false);
        }
    }
    Ok(true)
}
