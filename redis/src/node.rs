//! The engine's thread: one task on a current-thread tokio runtime owns the
//! Redis connection and this node's view of its rooms. Requests from the
//! hub, notifications from Redis and membership changes are handled one at
//! a time, so a resume's read and its join happen at one point of the
//! room's delivery order. Publishes go through a task of their own, in the
//! order queued, pipelined in batches on the one connection: a node's
//! messages keep their order.

use std::{
    collections::{BTreeMap, HashMap},
    io,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use hubbub_hub::{
    engine::{Resumed, DEDUPE_TTL},
    store::{new_epoch, now_ms},
    PresenceEntry, SessionId, StoreError, StoredMessage,
};
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::StreamRangeReply,
    Client, PushInfo, PushKind, RedisError, RedisResult, Script, Value,
};
use tokio::sync::mpsc;

use crate::{
    keys::{offset_of, room_of_channel, stream_id, RoomKeys},
    script,
    wire::{self, Notice},
    Command, Publish, Shared,
};

/// Notifications from Redis waiting for the thread; when full, the next
/// ones are dropped and every room is caught up from its log instead.
const PUSH_QUEUE: usize = 8192;
/// Publishes sent to Redis in one pipeline, at most.
const BATCH: usize = 256;
/// How often a lost connection is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// How long a connection attempt, and a request, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A client for `url`, speaking RESP3 (notifications share the connection
/// with requests).
pub(crate) fn client(url: &str) -> RedisResult<Client> {
    let separator = if url.contains('?') { '&' } else { '?' };
    Client::open(format!("{url}{separator}protocol=resp3"))
}

/// Start the engine's thread.
pub(crate) fn spawn(
    client: Client,
    shared: Arc<Shared>,
    queue: mpsc::Receiver<Command>,
    publishes: mpsc::Receiver<Publish>,
    done: std::sync::mpsc::Sender<()>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("hubbub-redis".into())
        .spawn(move || {
            runtime.block_on(run(client, shared, queue, publishes));
            let _ = done.send(());
        })?;
    Ok(())
}

async fn run(
    client: Client,
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Command>,
    publishes: mpsc::Receiver<Publish>,
) {
    let (pushes_in, mut pushes) = mpsc::channel(PUSH_QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let overflowed = overflow.clone();
    let push_sender = move |push: PushInfo| {
        if pushes_in.try_send(push).is_err() {
            overflowed.store(true, Ordering::Relaxed);
        }
        Ok::<(), ()>(())
    };
    let config = ConnectionManagerConfig::new()
        .set_push_sender(push_sender)
        .set_automatic_resubscription()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(RETRY);
    let Ok(conn) = ConnectionManager::new_lazy_with_config(client, config) else {
        return; // not RESP3 (cannot happen: `client` asks for it)
    };
    let heartbeat_every = (shared.config.presence_ttl / 3).max(Duration::from_millis(100));
    let mut node = Node {
        shared,
        conn,
        expire: script::expire_presence(),
        rooms: HashMap::new(),
        presence: HashMap::new(),
        stale: Arc::new(AtomicBool::new(true)),
        was_up: false,
        last_try: None,
    };
    let publisher = Publisher {
        conn: node.conn.clone(),
        shared: node.shared.clone(),
        stale: node.stale.clone(),
        script: script::publish(),
    };
    tokio::spawn(publisher.run(publishes));
    node.resync().await;
    let mut heartbeat = tokio::time::interval(heartbeat_every);
    let mut retry = tokio::time::interval(RETRY);
    loop {
        tokio::select! {
            command = queue.recv() => match command {
                Some(command) => {
                    node.metrics(|m| m.engine.queued.dec());
                    node.command(command).await;
                }
                None => break,
            },
            Some(push) = pushes.recv() => node.push(push).await,
            () = node.shared.wake.notified() => node.reconcile().await,
            _ = heartbeat.tick() => node.heartbeat().await,
            // Also wakes the loop when a publish found Redis gone.
            _ = retry.tick() => {}
        }
        if overflow.swap(false, Ordering::Relaxed) {
            node.stale.store(true, Ordering::Relaxed);
        }
        if node.shared.closing.load(Ordering::Relaxed) {
            break;
        }
        if node.is_stale() {
            node.resync().await;
        }
    }
    if !node.is_stale() {
        node.withdraw_presence().await;
    }
}

/// This node's view of a room it is subscribed to.
struct Room {
    /// The last offset delivered to the local members.
    delivered: u64,
    /// The room's history epoch.
    epoch: String,
}

struct Node {
    shared: Arc<Shared>,
    conn: ConnectionManager,
    /// The presence expiry script.
    expire: Script,
    /// The rooms subscribed to (those with local members).
    rooms: HashMap<String, Room>,
    /// The presence entries this node wrote, per room.
    presence: HashMap<String, BTreeMap<SessionId, PresenceEntry>>,
    /// Redis was lost (or notifications dropped): resubscribe and catch
    /// every room up before trusting the channel again.
    stale: Arc<AtomicBool>,
    /// Redis was reachable once (a later success is a reconnect).
    was_up: bool,
    last_try: Option<Instant>,
}

impl Node {
    fn keys(&self, room: &str) -> RoomKeys {
        RoomKeys::new(&self.shared.config.prefix, room)
    }

    fn metrics(&self, f: impl FnOnce(&hubbub_hub::Metrics)) {
        if let Some(hub) = self.shared.hub() {
            f(hub.metrics());
        }
    }

    fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// A failed request: lost connections make the node stale.
    fn failed(&self, error: &RedisError) -> StoreError {
        failed(&self.shared, &self.stale, error)
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Resume(room, since, limit, then) => {
                let resumed = self.resume(&room, since, limit).await;
                then(resumed);
                // Unsubscribe again if the session did not stay.
                self.shared.touch(&room);
            }
            Command::Follow(room, then) => {
                if let Err(error) = self.track(&room).await {
                    self.failed(&error); // joined locally; the resync follows it
                }
                then();
                self.shared.touch(&room);
            }
            Command::History(room, limit, before, answer) => {
                answer(self.history(&room, limit, before).await);
            }
            Command::Presence(room, answer) => answer(self.read_presence(&room).await),
        }
    }

    /// A notification of a room's channel, or of the connection's loss.
    async fn push(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::Disconnection => {
                self.stale.store(true, Ordering::Relaxed);
                self.shared.set_up(false);
            }
            PushKind::Message => {
                let [channel, payload] = &push.data[..] else {
                    return;
                };
                let (Some(channel), Some(payload)) = (text(channel), text(payload)) else {
                    return;
                };
                let prefix = self.shared.config.prefix.clone();
                let Some(room) = room_of_channel(&prefix, &channel) else {
                    return;
                };
                match wire::decode_notice(&payload) {
                    Some(Notice::Message(offset, epoch, body)) => {
                        self.on_message(room, offset, epoch, body).await;
                    }
                    Some(Notice::Presence(kind, entry)) => self.on_presence(room, kind, &entry),
                    None => {}
                }
            }
            _ => {}
        }
    }

    /// A message on a room's channel: delivered in offset order, after any
    /// gap is filled from the log; a duplicate is dropped.
    async fn on_message(&mut self, room: &str, offset: u64, epoch: &str, body: &str) {
        let Some(state) = self.rooms.get(room) else {
            return; // unsubscribed since
        };
        if state.epoch != epoch {
            // The room's history was replaced: follow Redis, not the notice.
            if let Err(error) = self.catch_up(room).await {
                self.failed(&error);
            }
            return;
        }
        if offset <= state.delivered {
            return;
        }
        if offset > state.delivered + 1 {
            if let Err(error) = self.fill(room, offset - 1).await {
                self.failed(&error); // the resync fills it
                return;
            }
        }
        if let Some(message) = wire::decode_message(room, offset, body) {
            self.deliver(&message);
        }
        if let Some(state) = self.rooms.get_mut(room) {
            state.delivered = offset;
        }
    }

    fn deliver(&self, message: &StoredMessage) {
        if let Some(hub) = self.shared.hub() {
            // Counted first: whoever sees the message sees it counted.
            let engine = &hub.metrics().engine;
            engine.delivered.inc();
            engine.lag_ms.add(now_ms().saturating_sub(message.ts));
            hub.deliver_stored(message);
        }
    }

    fn on_presence(&self, room: &str, kind: &str, entry: &PresenceEntry) {
        let Some(hub) = self.shared.hub() else { return };
        let own = (entry.node == hub.node_id()).then(|| hub.session(entry.id));
        let envelope = wire::presence_envelope(kind, room, entry);
        hub.room_text(room, &envelope.to_json(), own.flatten().as_ref());
    }

    /// Deliver the room's messages after the last delivered, up to `upto`,
    /// from its log.
    async fn fill(&mut self, room: &str, upto: u64) -> RedisResult<()> {
        let Some(from) = self.rooms.get(room).map(|state| state.delivered + 1) else {
            return Ok(());
        };
        if from <= upto {
            let missed = self.range(room, from, upto, None).await?;
            for message in &missed {
                self.deliver(message);
            }
            let count = missed.len() as u64;
            self.metrics(|m| m.engine.recovered.add(count));
        }
        if let Some(state) = self.rooms.get_mut(room) {
            state.delivered = state.delivered.max(upto);
        }
        Ok(())
    }

    /// Read the room's last offset and epoch and deliver what this node
    /// missed. A room seen for the first time starts at its last offset: a
    /// join is live from now.
    async fn catch_up(&mut self, room: &str) -> RedisResult<()> {
        let keys = self.keys(room);
        let (seq, epoch): (Option<u64>, String) = redis::pipe()
            .cmd("SET")
            .arg(&keys.epoch)
            .arg(new_epoch())
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&keys.seq)
            .cmd("GET")
            .arg(&keys.epoch)
            .query_async(&mut self.conn)
            .await?;
        let seq = seq.unwrap_or(0);
        match self.rooms.get_mut(room) {
            None => {
                let state = Room {
                    delivered: seq,
                    epoch,
                };
                self.rooms.insert(room.to_owned(), state);
                Ok(())
            }
            Some(state) => {
                if state.epoch != epoch {
                    (state.epoch, state.delivered) = (epoch, 0);
                }
                self.fill(room, seq).await
            }
        }
    }

    /// Subscribe to `room` and learn where it stands, unless done.
    async fn track(&mut self, room: &str) -> RedisResult<()> {
        if !self.rooms.contains_key(room) {
            self.conn.subscribe(&self.keys(room).channel).await?;
            self.catch_up(room).await?;
        }
        Ok(())
    }

    /// The room's messages after `since` up to the last one delivered here
    /// (later ones arrive live once the caller joined), at most `limit`.
    async fn resume(
        &mut self,
        room: &str,
        since: u64,
        limit: usize,
    ) -> Result<Resumed, StoreError> {
        if let Err(error) = self.track(room).await {
            return Err(self.failed(&error));
        }
        if self
            .rooms
            .get(room)
            .is_some_and(|state| since > state.delivered)
        {
            // The client saw more than this node delivered yet (it came
            // from a node ahead, or read the history): catch up first, or
            // the messages up to `since` would reach it again, live.
            if let Err(error) = self.catch_up(room).await {
                return Err(self.failed(&error));
            }
        }
        let Some(state) = self.rooms.get(room) else {
            return Err(StoreError::Closed);
        };
        let (last, epoch) = (state.delivered, state.epoch.clone());
        if since >= last || limit == 0 {
            // Nothing missed, or an id this room never gave.
            let complete = since == last;
            let messages = Vec::new();
            return Ok(Resumed {
                messages,
                complete,
                epoch,
            });
        }
        let wanted = limit.saturating_add(1);
        let mut messages = match self.range(room, since + 1, last, Some(wanted)).await {
            Ok(messages) => messages,
            Err(error) => return Err(self.failed(&error)),
        };
        let cut = messages.len() > limit;
        messages.truncate(limit);
        // Messages trimmed from the log (length or age) make it incomplete.
        let complete = !cut && messages.len() as u64 == last - since;
        Ok(Resumed {
            messages,
            complete,
            epoch,
        })
    }

    /// The last `limit` messages of `room` below `before`, oldest first.
    async fn history(
        &mut self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let end = before.map_or_else(|| "+".to_owned(), |id| format!("({}", stream_id(id)));
        let reply: RedisResult<StreamRangeReply> = redis::cmd("XREVRANGE")
            .arg(&self.keys(room).log)
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn)
            .await;
        let mut messages = match reply {
            Ok(reply) => messages_of(room, reply),
            Err(error) => return Err(self.failed(&error)),
        };
        messages.reverse();
        Ok(messages)
    }

    /// The log's messages with offsets `from..=to`, at most `count`.
    async fn range(
        &mut self,
        room: &str,
        from: u64,
        to: u64,
        count: Option<usize>,
    ) -> RedisResult<Vec<StoredMessage>> {
        let mut command = redis::cmd("XRANGE");
        command
            .arg(&self.keys(room).log)
            .arg(stream_id(from))
            .arg(stream_id(to));
        if let Some(count) = count {
            command.arg("COUNT").arg(count);
        }
        let reply: StreamRangeReply = command.query_async(&mut self.conn).await?;
        Ok(messages_of(room, reply))
    }

    /// Everyone in `room` on every node whose entry has not expired,
    /// sorted by id (then node).
    async fn read_presence(&mut self, room: &str) -> Result<Vec<PresenceEntry>, StoreError> {
        let members: RedisResult<Vec<String>> = redis::cmd("ZRANGE")
            .arg(&self.keys(room).presence)
            .arg(now_ms())
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut self.conn)
            .await;
        let members = members.map_err(|error| self.failed(&error))?;
        let mut entries: Vec<PresenceEntry> = members
            .iter()
            .filter_map(|member| serde_json::from_str(member).ok())
            .filter_map(|value| wire::entry_from_json(&value))
            .collect();
        entries.sort_by(|a, b| (a.id, &a.node).cmp(&(b.id, &b.node)));
        Ok(entries)
    }

    /// Follow the local membership of the rooms that changed: subscribe or
    /// unsubscribe, and write presence (with its events).
    async fn reconcile(&mut self) {
        let now = Instant::now();
        let changed: Vec<(String, bool, BTreeMap<SessionId, PresenceEntry>)> = {
            let mut membership = self.shared.membership();
            membership.expire_watches(now);
            let dirty = std::mem::take(&mut membership.dirty);
            dirty
                .into_iter()
                .map(|room| {
                    let follow = membership.follows(&room, now);
                    let members = membership.rooms.get(&room).cloned().unwrap_or_default();
                    (room, follow, members)
                })
                .collect()
        };
        if self.is_stale() {
            // Redis is away: look again once it is back.
            self.shared
                .membership()
                .dirty
                .extend(changed.into_iter().map(|(room, ..)| room));
            return;
        }
        for (room, follow, members) in changed {
            if let Err(error) = self.reconcile_room(&room, follow, &members).await {
                self.failed(&error);
                self.shared.membership().dirty.insert(room);
            }
        }
    }

    async fn reconcile_room(
        &mut self,
        room: &str,
        follow: bool,
        members: &BTreeMap<SessionId, PresenceEntry>,
    ) -> RedisResult<()> {
        if !follow {
            if self.rooms.contains_key(room) {
                self.conn.unsubscribe(&self.keys(room).channel).await?;
                self.rooms.remove(room);
            }
        } else {
            self.track(room).await?;
        }
        let written = self.presence.get(room);
        let is_new = |entry: &&PresenceEntry| written.is_none_or(|w| !w.contains_key(&entry.id));
        let added: Vec<PresenceEntry> = members.values().filter(is_new).cloned().collect();
        let removed: Vec<PresenceEntry> = written
            .into_iter()
            .flat_map(|written| written.values())
            .filter(|entry| !members.contains_key(&entry.id))
            .cloned()
            .collect();
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let keys = self.keys(room);
        let ttl = millis(self.shared.config.presence_ttl).max(1);
        let events = self.shared.hub().is_some_and(|hub| hub.presence_events());
        let mut pipe = redis::pipe();
        for entry in &added {
            let member = wire::entry_to_json(entry);
            pipe.cmd("ZADD")
                .arg(&keys.presence)
                .arg(now_ms() + ttl)
                .arg(member);
            pipe.ignore();
        }
        for entry in &removed {
            let member = wire::entry_to_json(entry);
            pipe.cmd("ZREM").arg(&keys.presence).arg(member).ignore();
        }
        pipe.cmd("PEXPIRE").arg(&keys.presence).arg(ttl).ignore();
        if events {
            let joins = added.iter().map(|entry| ("presence.join", entry));
            let leaves = removed.iter().map(|entry| ("presence.leave", entry));
            for (kind, entry) in joins.chain(leaves) {
                let notice = wire::presence_notice(kind, entry);
                pipe.cmd("PUBLISH").arg(&keys.channel).arg(notice).ignore();
            }
        }
        pipe.query_async::<()>(&mut self.conn).await?;
        let written = self.presence.entry(room.to_owned()).or_default();
        for entry in added {
            written.insert(entry.id, entry);
        }
        for entry in removed {
            written.remove(&entry.id);
        }
        if written.is_empty() {
            self.presence.remove(room);
        }
        Ok(())
    }

    /// Refresh this node's presence entries, drop the expired ones of the
    /// rooms it is in (announcing each once, as `presence.leave`, with
    /// presence events on), and let watches that ran out go.
    async fn heartbeat(&mut self) {
        let expired = {
            let mut membership = self.shared.membership();
            membership.expire_watches(Instant::now());
            !membership.dirty.is_empty()
        };
        if expired {
            self.shared.wake.notify_one();
        }
        if self.presence.is_empty() || self.is_stale() {
            return;
        }
        let ttl = millis(self.shared.config.presence_ttl).max(1);
        let now = now_ms();
        let events = self.shared.hub().is_some_and(|hub| hub.presence_events());
        let mut pipe = redis::pipe();
        // Loaded first, as for publishes (see `Publisher::pipeline`).
        pipe.cmd("SCRIPT")
            .arg("LOAD")
            .arg(script::EXPIRE_PRESENCE)
            .ignore();
        for (room, written) in &self.presence {
            let keys = self.keys(room);
            for entry in written.values() {
                let member = wire::entry_to_json(entry);
                pipe.cmd("ZADD")
                    .arg(&keys.presence)
                    .arg(now + ttl)
                    .arg(member);
                pipe.ignore();
            }
            pipe.cmd("PEXPIRE").arg(&keys.presence).arg(ttl).ignore();
            pipe.cmd("EVALSHA")
                .arg(self.expire.get_hash())
                .arg(1)
                .arg(&keys.presence)
                .arg(now)
                .arg(&keys.channel)
                .arg(u8::from(events))
                .ignore();
        }
        if let Err(error) = pipe.query_async::<()>(&mut self.conn).await {
            self.failed(&error);
        }
    }

    /// After a loss: resubscribe, catch every room up from its log and
    /// refresh presence; until it succeeds, try again every [`RETRY`].
    async fn resync(&mut self) {
        if self.last_try.is_some_and(|at| at.elapsed() < RETRY) {
            return;
        }
        self.last_try = Some(Instant::now());
        // Cleared first: a loss during the resync marks it again.
        self.stale.store(false, Ordering::Relaxed);
        match self.try_resync().await {
            Ok(()) => {
                if self.was_up {
                    self.metrics(|m| m.engine.reconnects.inc());
                }
                self.was_up = true;
                self.shared.set_up(true);
                self.heartbeat().await;
                self.shared.wake.notify_one(); // membership changed meanwhile
            }
            Err(error) => {
                self.stale.store(true, Ordering::Relaxed);
                self.failed(&error);
            }
        }
    }

    async fn try_resync(&mut self) -> RedisResult<()> {
        redis::cmd("PING").query_async::<()>(&mut self.conn).await?;
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        if !rooms.is_empty() {
            let channels: Vec<String> = rooms.iter().map(|room| self.keys(room).channel).collect();
            self.conn.subscribe(channels).await?;
        }
        for room in rooms {
            self.catch_up(&room).await?;
        }
        Ok(())
    }

    /// On a clean stop: remove this node's presence entries.
    async fn withdraw_presence(&mut self) {
        let mut pipe = redis::pipe();
        for (room, written) in &self.presence {
            let keys = self.keys(room);
            for entry in written.values() {
                let member = wire::entry_to_json(entry);
                pipe.cmd("ZREM").arg(&keys.presence).arg(member).ignore();
            }
        }
        let _ = pipe.query_async::<()>(&mut self.conn).await;
    }
}

/// The task that runs the publish script for every queued message.
struct Publisher {
    conn: ConnectionManager,
    shared: Arc<Shared>,
    stale: Arc<AtomicBool>,
    script: Script,
}

/// What the publish script answers: stored (1) or a known retry (0), the
/// offset, the epoch.
type Published = RedisResult<(u8, u64, String)>;

impl Publisher {
    async fn run(mut self, mut queue: mpsc::Receiver<Publish>) {
        let mut batch = Vec::with_capacity(BATCH);
        while queue.recv_many(&mut batch, BATCH).await > 0 {
            if let Some(hub) = self.shared.hub() {
                hub.metrics().engine.queued.sub(batch.len() as u64);
            }
            let pipe = self.pipeline(&batch);
            let results = self.send(&pipe, batch.len()).await;
            for (publish, result) in batch.drain(..).zip(results) {
                self.finish(publish, result);
            }
        }
    }

    /// One pipeline of `EVALSHA`s, one per message, after a `SCRIPT LOAD`:
    /// a Redis that lost its script cache (a restart) has it again before
    /// the first call, so no call fails and none is sent twice or out of
    /// order.
    fn pipeline(&self, batch: &[Publish]) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("SCRIPT").arg("LOAD").arg(script::PUBLISH).ignore();
        for publish in batch {
            pipe.add_command(self.invocation(publish));
        }
        pipe
    }

    /// Send `pipe`: an answer per message (`count` of them).
    async fn send(&mut self, pipe: &redis::Pipeline, count: usize) -> Vec<Published> {
        match pipe.query_async::<Vec<Published>>(&mut self.conn).await {
            Ok(results) if results.len() == count => results,
            Ok(_) => (0..count).map(|_| Err(short_answer())).collect(),
            Err(error) => (0..count).map(|_| Err(error.clone())).collect(),
        }
    }

    /// `EVALSHA` of the publish script for one message (see [`script`]).
    fn invocation(&self, publish: &Publish) -> redis::Cmd {
        let config = &self.shared.config;
        let message = &publish.message;
        let keys = RoomKeys::new(&config.prefix, &message.room);
        let age_ms = config.log_max_age.map_or(0, millis);
        let min_ts = match age_ms {
            0 => 0,
            age => message.ts.saturating_sub(age).max(1),
        };
        let ack_key = publish
            .ack
            .as_ref()
            .map(|(sender, ack)| keys.ack(sender, &ack.id));
        let mut command = redis::cmd("EVALSHA");
        command
            .arg(self.script.get_hash())
            .arg(if ack_key.is_some() { 4 } else { 3 })
            .arg(&keys.seq)
            .arg(&keys.log)
            .arg(&keys.epoch);
        if let Some(key) = ack_key {
            command.arg(key);
        }
        command
            .arg(&keys.channel)
            .arg(wire::encode_message(message))
            .arg(message.ts)
            .arg(config.log_max_len.max(1))
            .arg(new_epoch())
            .arg(DEDUPE_TTL.as_secs())
            .arg(min_ts)
            .arg(age_ms);
        command
    }

    /// Count the outcome and answer the sender of an acknowledged publish
    /// (the members hear of the message from the room's channel).
    fn finish(&self, publish: Publish, result: Published) {
        let hub = self.shared.hub();
        let outcome = match result {
            Ok((stored, offset, _)) => {
                if let (1, Some(hub)) = (stored, &hub) {
                    let metrics = hub.metrics();
                    metrics.store_appends.inc();
                    let micros = u64::try_from(publish.queued.elapsed().as_micros());
                    metrics
                        .store_append_latency_us
                        .add(micros.unwrap_or(u64::MAX));
                }
                Ok(Some(offset))
            }
            Err(error) => {
                if let Some(hub) = &hub {
                    hub.metrics().store_append_errors.inc();
                }
                Err(failed(&self.shared, &self.stale, &error))
            }
        };
        if let Some((_, ack)) = publish.ack {
            (ack.done)(outcome);
        }
    }
}

/// Redis answered a pipeline with fewer replies than requests.
fn short_answer() -> RedisError {
    RedisError::from((redis::ErrorKind::Client, "a short pipeline answer"))
}

/// A failed request: a lost connection marks the node stale (and Redis
/// down); the hub's error names Redis.
fn failed(shared: &Shared, stale: &AtomicBool, error: &RedisError) -> StoreError {
    let lost = error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout();
    if lost {
        stale.store(true, Ordering::Relaxed);
        shared.set_up(false);
    }
    StoreError::Backend(format!("Redis: {error}"))
}

/// A duration in milliseconds.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A bulk or simple string's text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// The messages of a stream range of `room`'s log (entries that do not
/// parse are skipped).
fn messages_of(room: &str, reply: StreamRangeReply) -> Vec<StoredMessage> {
    reply
        .ids
        .iter()
        .filter_map(|entry| {
            let offset = offset_of(&entry.id)?;
            let body: String = entry.get("m")?;
            wire::decode_message(room, offset, &body)
        })
        .collect()
}
