//! Agents: the tokens they connect with, the agents that connected and the
//! last of their events applied, and the runs due for them.

use std::collections::BTreeMap;

use baton_proto::v1::link::Assignment;
use baton_proto::v1::{AgentInfo, FlowRun, PoolKind, StateName, Timestamp, merge_job_variables};
use sqlx::Row;

use super::{
    Store, StoreError, StoreResult, as_u32, json_column, now, random_hex, secret_matches,
    sha256_hex, to_json,
};

/// A connecting agent, as its hello describes it.
#[derive(Debug, Clone)]
pub struct AgentRecord {
    pub id: String,
    pub name: String,
    pub pool: String,
    pub queues: Vec<String>,
    pub slots: u32,
    pub version: String,
    /// The address it reached this core at, as it was given it.
    pub core_address: String,
}

/// A run waiting for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRun {
    pub id: String,
    pub queue: String,
    pub artifact: String,
}

/// A run an agent holds (`PENDING`, `RUNNING` or `CANCELLING`), with its
/// agent's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRun {
    pub id: String,
    pub agent_id: String,
    pub attempt: u32,
    pub state: StateName,
    pub state_changed_at: Timestamp,
    /// Until when some core holds the agent's session; past it, no core
    /// has heard from the agent within the lease (never: 0).
    pub lease_until: Timestamp,
}

/// The session a core holds for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLease {
    pub agent_id: String,
    /// Tells this connection from the agent's next one (on any core).
    pub session: String,
    /// The lease runs to here: when the agent was last heard plus the
    /// crash window.
    pub until: Timestamp,
    /// The last of the agent's events applied.
    pub acked_seq: u64,
}

fn due_run(row: &sqlx::any::AnyRow) -> StoreResult<DueRun> {
    Ok(DueRun {
        id: row.try_get("id")?,
        queue: row.try_get("work_queue")?,
        artifact: row.try_get("artifact_digest")?,
    })
}

fn held_run(row: &sqlx::any::AnyRow) -> StoreResult<HeldRun> {
    Ok(HeldRun {
        id: row.try_get("id")?,
        agent_id: row.try_get("agent_id")?,
        attempt: as_u32(row.try_get("attempt")?),
        state: super::parsed_column(row, "state")?,
        state_changed_at: Timestamp(row.try_get("state_changed_at")?),
        lease_until: Timestamp(row.try_get("lease_until")?),
    })
}

impl Store {
    /// Creates a token for agents of `pool`: returns its id and secret.
    /// Only a hash of the secret is kept.
    pub async fn create_agent_token(&self, pool: &str) -> StoreResult<(String, String)> {
        super::deployments::check_name("work pool", pool)?;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let secret = random_hex(32)?;
        sqlx::query(
            "INSERT INTO agent_tokens (id, pool, secret_sha256, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(pool)
        .bind(sha256_hex(&secret))
        .bind(now().0)
        .execute(&self.write)
        .await?;
        Ok((id, secret))
    }

    /// The pool a token admits agents to; `None` if the token is unknown
    /// or its secret is wrong.
    pub async fn agent_token_pool(&self, id: &str, secret: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT pool, secret_sha256 FROM agent_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let matches = secret_matches(&row.try_get::<String, _>("secret_sha256")?, secret);
        Ok(matches.then(|| row.try_get("pool")).transpose()?)
    }

    /// Records a connecting agent and the lease `core_id` takes on its
    /// session; returns the last of its events applied.
    pub async fn agent_connected(
        &self,
        agent: &AgentRecord,
        core_id: &str,
        lease: &AgentLease,
    ) -> StoreResult<u64> {
        let at = now().0;
        let payload = serde_json::json!({ "name": agent.name, "slots": agent.slots, "version": agent.version });
        self.record_event(
            "agent.connected",
            format!("agent/{}", agent.id),
            vec![format!("pool/{}", agent.pool)],
            payload,
        )
        .await?;
        sqlx::query(
            "INSERT INTO agents (id, name, pool, queues, slots, version, connected, first_seen, last_seen, last_seq, core_id, session, lease_until, core_address) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7, 0, $8, $9, $10, $11) \
             ON CONFLICT (id) DO UPDATE SET name = $2, pool = $3, queues = $4, slots = $5, version = $6, connected = 1, last_seen = $7, \
             core_id = $8, session = $9, lease_until = $10, core_address = $11",
        )
        .bind(&agent.id)
        .bind(&agent.name)
        .bind(&agent.pool)
        .bind(to_json(&agent.queues)?)
        .bind(i64::from(agent.slots))
        .bind(&agent.version)
        .bind(at)
        .bind(core_id)
        .bind(&lease.session)
        .bind(lease.until.0)
        .bind(&agent.core_address)
        .execute(&self.write)
        .await?;
        let last: i64 = sqlx::query("SELECT last_seq FROM agents WHERE id = $1")
            .bind(&agent.id)
            .fetch_one(&self.write)
            .await?
            .try_get("last_seq")?;
        Ok(u64::try_from(last).unwrap_or(0))
    }

    /// Renews the leases of sessions this core holds, in one write; returns
    /// the agents whose session is no longer the one recorded (the agent
    /// connected again, here or to another core): their sessions here are
    /// over.
    pub async fn renew_leases(&self, leases: Vec<AgentLease>) -> StoreResult<Vec<String>> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        self.write_transaction(move |_, conn| {
            Box::pin(async move {
                let mut replaced = Vec::new();
                for lease in leases {
                    let done = sqlx::query(
                        "UPDATE agents SET lease_until = CASE WHEN lease_until < $1 THEN $1 ELSE lease_until END, \
                         last_seen = $2, last_seq = CASE WHEN last_seq < $3 THEN $3 ELSE last_seq END \
                         WHERE id = $4 AND session = $5",
                    )
                    .bind(lease.until.0)
                    .bind(now().0)
                    .bind(i64::try_from(lease.acked_seq).unwrap_or(i64::MAX))
                    .bind(&lease.agent_id)
                    .bind(&lease.session)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() == 0 {
                        replaced.push(lease.agent_id);
                    }
                }
                Ok(replaced)
            })
        })
        .await
    }

    /// Records the end of session `session` of agent `id` (a newer
    /// session, on this core or another, is left as it is) and the last of
    /// its events applied.
    pub async fn agent_disconnected(
        &self,
        id: &str,
        session: &str,
        acked_seq: u64,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE agents SET connected = 0, last_seen = $1, \
             last_seq = CASE WHEN last_seq < $2 THEN $2 ELSE last_seq END WHERE id = $3 AND session = $4",
        )
        .bind(now().0)
        .bind(i64::try_from(acked_seq).unwrap_or(i64::MAX))
        .bind(id)
        .bind(session)
        .execute(&self.write)
        .await?;
        if done.rows_affected() > 0 {
            self.record_event(
                "agent.disconnected",
                format!("agent/{id}"),
                Vec::new(),
                serde_json::Value::Null,
            )
            .await?;
        }
        Ok(())
    }

    /// Every known agent, connected ones first.
    pub async fn agents(&self) -> StoreResult<Vec<AgentInfo>> {
        let rows = sqlx::query(concat!(
            "SELECT a.id, a.name, a.pool, a.queues, a.slots, a.version, a.connected, a.first_seen, a.last_seen, a.core_id, a.core_address, \
             (SELECT COUNT(*) FROM flow_runs r WHERE r.agent_id = a.id AND r.state IN ",
            holding_states!(),
            ") AS running FROM agents a ORDER BY a.connected DESC, a.last_seen DESC",
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let connected = row.try_get::<i64, _>("connected")? != 0;
                let core_id: Option<String> = row.try_get("core_id")?;
                let core_address: Option<String> = row.try_get("core_address")?;
                Ok(AgentInfo {
                    core_id: core_id.filter(|_| connected),
                    core_address: core_address.filter(|a| connected && !a.is_empty()),
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    pool: row.try_get("pool")?,
                    queues: json_column(row, "queues")?,
                    slots: as_u32(row.try_get("slots")?),
                    running: as_u32(row.try_get("running")?),
                    version: row.try_get("version")?,
                    connected,
                    first_seen: Timestamp(row.try_get("first_seen")?),
                    last_seen: Timestamp(row.try_get("last_seen")?),
                    // Known to the dispatcher (in memory), not stored.
                    cached: Vec::new(),
                })
            })
            .collect()
    }

    /// Up to `limit` runs of `pool` due now, in the order they should go:
    /// the queues of `active` in that order (highest priority first), then
    /// runs in queues the pool does not list; none from the queues of
    /// `paused`. Within a queue, the longest due first. Runs of a paused
    /// deployment, or of one at its (`enqueue`) concurrency limit, are left
    /// out.
    pub async fn due_runs(
        &self,
        pool: &str,
        active: &[String],
        paused: &[String],
        limit: u32,
    ) -> StoreResult<Vec<DueRun>> {
        const DUE: &str = concat!(
            "SELECT r.id, r.work_queue, d.artifact_digest FROM flow_runs r \
             JOIN deployments d ON d.id = r.deployment_id \
             WHERE r.state IN ('SCHEDULED', 'LATE', 'AWAITING_RETRY') AND r.work_pool = $1 AND r.scheduled_at <= $2 \
             AND d.paused = 0 AND (d.enqueue_limit IS NULL OR d.enqueue_limit > (SELECT COUNT(*) FROM flow_runs h \
             WHERE h.deployment_id = d.id AND h.state IN ",
            holding_states!(),
            "))"
        );
        let at = now().0;
        let mut due = Vec::new();
        for queue in active {
            let room = limit.saturating_sub(u32::try_from(due.len()).unwrap_or(u32::MAX));
            if room == 0 {
                break;
            }
            let rows = sqlx::query(&format!(
                "{DUE} AND r.work_queue = $3 ORDER BY r.scheduled_at, r.id LIMIT $4"
            ))
            .bind(pool)
            .bind(at)
            .bind(queue)
            .bind(i64::from(room))
            .fetch_all(&self.read)
            .await?;
            due.extend(rows.iter().map(due_run).collect::<StoreResult<Vec<_>>>()?);
        }
        let room = limit.saturating_sub(u32::try_from(due.len()).unwrap_or(u32::MAX));
        if room > 0 {
            // Queues the pool does not list (a deployment may name any).
            let known: Vec<&String> = active.iter().chain(paused).collect();
            let placeholders: Vec<String> =
                (0..known.len()).map(|i| format!("${}", i + 4)).collect();
            let unknown = if known.is_empty() {
                String::new()
            } else {
                format!(" AND r.work_queue NOT IN ({})", placeholders.join(", "))
            };
            let sql = format!("{DUE}{unknown} ORDER BY r.scheduled_at, r.id LIMIT $3");
            let mut query = sqlx::query(&sql).bind(pool).bind(at).bind(i64::from(room));
            for queue in known {
                query = query.bind(queue);
            }
            let rows = query.fetch_all(&self.read).await?;
            due.extend(rows.iter().map(due_run).collect::<StoreResult<Vec<_>>>()?);
        }
        Ok(due)
    }

    /// When the next waiting run after `at` falls due, if any.
    pub async fn next_due_after(&self, at: Timestamp) -> StoreResult<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MIN(scheduled_at) AS next FROM flow_runs \
             WHERE state IN ('SCHEDULED', 'AWAITING_RETRY') AND scheduled_at > $1",
        )
        .bind(at.0)
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("next")?.map(Timestamp))
    }

    /// How many runs are due and not yet pushed to an agent, by pool and
    /// queue.
    pub async fn runs_waiting(&self) -> StoreResult<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT work_pool, work_queue, COUNT(*) AS waiting FROM flow_runs \
             WHERE state IN ('SCHEDULED', 'LATE', 'AWAITING_RETRY') AND scheduled_at <= $1 \
             GROUP BY work_pool, work_queue",
        )
        .bind(now().0)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((row.try_get("work_pool")?, row.try_get("work_queue")?, row.try_get("waiting")?))
            })
            .collect()
    }

    /// Runs held by agents, with their agents' leases: those the crash
    /// watchdog checks.
    pub async fn held_runs(&self) -> StoreResult<Vec<HeldRun>> {
        let rows = sqlx::query(concat!(
            "SELECT r.id, r.agent_id, r.attempt, r.state, r.state_changed_at, COALESCE(a.lease_until, 0) AS lease_until \
             FROM flow_runs r LEFT JOIN agents a ON a.id = r.agent_id WHERE r.state IN ",
            holding_states!(),
            " AND r.agent_id IS NOT NULL"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(held_run).collect()
    }

    /// The runs `agent_ids` hold in state `CANCELLING`: cancellations
    /// their agents must hear of, whichever core took them.
    pub async fn cancelling_runs(&self, agent_ids: &[String]) -> StoreResult<Vec<HeldRun>> {
        if agent_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=agent_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT r.id, r.agent_id, r.attempt, r.state, r.state_changed_at, CAST(0 AS BIGINT) AS lease_until \
             FROM flow_runs r WHERE r.agent_id IN ({}) AND r.state = 'CANCELLING'",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in agent_ids {
            query = query.bind(id);
        }
        query.fetch_all(&self.read).await?.iter().map(held_run).collect()
    }

    /// How many runs of `pool` (and of its queue `queue`, if given) hold a
    /// slot, for pool and queue concurrency limits.
    pub async fn active_in_pool(&self, pool: &str, queue: Option<&str>) -> StoreResult<u32> {
        let n: i64 = sqlx::query(concat!(
            "SELECT COUNT(*) AS n FROM flow_runs WHERE work_pool = $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR work_queue = CAST($2 AS TEXT)) AND state IN ",
            holding_states!()
        ))
        .bind(pool)
        .bind(queue)
        .fetch_one(&self.read)
        .await?
        .try_get("n")?;
        Ok(as_u32(n))
    }

    /// What an agent needs to run `run`: its component, parameters, limits
    /// and the values of the variables and secrets its deployment grants.
    pub async fn assignment(&self, run: &FlowRun) -> StoreResult<Assignment> {
        let name = run.deployment.split_once('/').map_or("", |(_, name)| name);
        let deployment = self.deployment(&run.flow, name).await?;
        let mut variables = BTreeMap::new();
        for variable in &deployment.spec.capabilities.variables {
            let value = match self.variable(variable).await {
                Ok(v) => Some(v.value),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            variables.insert(variable.clone(), value);
        }
        let mut secrets = BTreeMap::new();
        for secret in &deployment.spec.capabilities.secrets {
            let value = match self.secret(secret).await {
                Ok(v) => Some(v),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            secrets.insert(secret.clone(), value);
        }
        // Checked at deploy and at the run's creation: merged only.
        let (pool_kind, template) = self.job_template(Some(&run.work_pool)).await?;
        let job_variables =
            merge_job_variables(&template, &[&deployment.spec.job_variables, &run.job_variables]);
        Ok(Assignment {
            run_id: run.id.clone(),
            attempt: run.attempt,
            flow: run.flow.clone(),
            deployment: run.deployment.clone(),
            artifact: deployment.spec.artifact.clone(),
            parameters: run.parameters.clone(),
            memory_bytes: None,
            timeout_ms: deployment.spec.timeout_seconds.map(|s| s.saturating_mul(1000)),
            variables,
            secrets,
            outgoing_hosts: deployment.spec.capabilities.outgoing_hosts.clone(),
            commands: deployment.spec.capabilities.commands.clone(),
            // Only a pod's runner, which has no link to its agent, asks
            // the API about its children with it.
            execution_key: (pool_kind == PoolKind::Kubernetes)
                .then(|| self.cipher.execution_key(&run.id, run.attempt)),
            pool_kind,
            job_variables,
        })
    }
}
