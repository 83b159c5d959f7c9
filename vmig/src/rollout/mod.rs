//! `vmig rollout --cluster C`: bring every host of a cluster to its desired layout when that
//! needs a GPU reset or host reboot (issue #21; docs/admin-guide.md "Rolling out a layout").
//!
//! Per host whose agent reports `pending-reset` (or `blocked-in-use`, which evacuation may
//! free): enter maintenance mode (vCenter evacuates what it can; a VM that cannot move makes
//! the task fail and the rollout stop naming the host), reboot the host (`--reboot host`,
//! `RebootHost_Task`) or wait for the admin to (`--reboot admin`, exit status 7), wait until
//! the agent reports the layout `applied` on every GPU, exit maintenance mode; then the next
//! hosts, `--max-unavailable` at a time.
//!
//! Before any host enters maintenance mode every host's desired layout is read back and
//! checked (unreadable or impossible → refused, exit 3) and every agent must report on the
//! current desired version (`failed`, `invalid-layout`, a local override or no report → stop,
//! exit 6, naming the host). Progress is recorded in the cluster's `vmig.rollout` attribute
//! ([`record`]) after every step, so running the same command again resumes; the record is
//! removed when the rollout is done. Progress lines go to stderr; with `--json`, one JSON
//! event per line on stdout.
//!
//! vCenter itself failing mid-way stops the rollout with exit status 1 and a message that
//! says which case it is ([`Rollout::explain`]): vCenter not answering (its record stays, so
//! the same command resumes once vCenter is back), or vCenter answering without the record
//! (restarted without its data, or restored: the next run starts from what vCenter shows).
//! Never a wait without bound: every call has the client's timeouts.
pub mod record;

use std::io::Write;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;
use vcenter_client::{CustomFieldKey, CustomValues, HostRef, MoRef, TaskWait};

use crate::layout::show::{self, HostRow};
use crate::layout::target::{Desired, Inventory, value};
use crate::layout::{validate, vc_err};
use crate::{AdminError, Connection, ExitCode, output};
use record::{FIELD_ROLLOUT, HostEntry, Phase, Record};

/// `vmig rollout`.
#[derive(Debug, Clone, Args)]
pub struct RolloutArgs {
    /// The cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// How many hosts may be in maintenance mode at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_unavailable: u32,
    /// Say what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Who reboots a host in maintenance mode: vmig (`RebootHost_Task`) or the admin (vmig
    /// then exits with status 7; run the same command again after the reboot).
    #[arg(long, value_enum, default_value_t = RebootMode::Host)]
    pub reboot: RebootMode,
    /// How long to wait for a host's agent to report the layout applied.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    pub timeout_s: u64,
    /// Forget an unreadable rollout record and start over.
    #[arg(long)]
    pub restart: bool,
}

/// Who reboots a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RebootMode {
    Host,
    Admin,
}

/// How long a host resumed in `waiting-for-reboot` may go on reporting `pending-reset`
/// before vmig concludes it was not rebooted yet (its agent reports within a few polls).
const REBOOT_SETTLE: Duration = Duration::from_secs(30);
/// How often the agents' states are read while waiting.
const POLL: Duration = Duration::from_secs(2);

/// What a host needs, from its agent's per-GPU states.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    /// Every GPU `applied` (or no desired layout).
    Nothing,
    /// A GPU waits for a reset or reboot.
    Reset,
    /// A GPU is blocked by instances in use (maintenance mode may free them).
    Blocked(String),
    /// The agent has not reported on this desired version yet.
    Waiting(String),
    /// Something an admin must fix first.
    Broken(String),
}

fn need(row: &HostRow) -> Need {
    if let Some(e) = &row.desired_error {
        return Need::Broken(format!("its desired layout is unreadable: {e}"));
    }
    if row.desired.is_none() {
        return Need::Nothing;
    }
    if row.agent != "ok" {
        return Need::Broken(format!("agent: {}", row.agent));
    }
    let detail = |g: &show::GpuRow| {
        format!(
            "GPU {} {}: {}",
            g.index,
            g.state,
            g.reason.clone().unwrap_or_default()
        )
    };
    if let Some(g) = row.gpus.iter().find(|g| {
        matches!(
            g.state.as_str(),
            "failed" | "invalid-layout" | "local-override"
        )
    }) {
        return Need::Broken(detail(g));
    }
    if let Some(g) = row.gpus.iter().find(|g| g.state == "waiting-for-agent") {
        return Need::Waiting(detail(g));
    }
    if row.gpus.iter().any(|g| g.state == "pending-reset") {
        return Need::Reset;
    }
    if let Some(g) = row.gpus.iter().find(|g| g.state == "blocked-in-use") {
        return Need::Blocked(format!(
            "{} (in use by {})",
            detail(g),
            g.blocked_by.join(", ")
        ));
    }
    Need::Nothing
}

/// One JSON event on stdout (`--json`).
#[derive(Debug, Serialize)]
struct Event<'a> {
    event: &'a str,
    cluster: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    message: &'a str,
}

/// A rollout in progress.
struct Rollout<'a> {
    conn: &'a Connection,
    cluster: MoRef,
    args: &'a RolloutArgs,
    json: bool,
    out: &'a mut dyn Write,
    field: Option<CustomFieldKey>,
    record: Record,
    /// The cluster's rollout lock (none with `--dry-run`), renewed while the rollout runs.
    lock: Option<crate::lock::Lock>,
    /// Whether this run has written the record to vCenter (from then on, a record gone from
    /// the cluster means vCenter lost the rollout's state).
    written: bool,
}

impl Rollout<'_> {
    fn event(&mut self, event: &str, host: Option<&str>, message: &str) -> Result<(), AdminError> {
        let who = host.map(|h| format!("{h}: ")).unwrap_or_default();
        eprintln!(
            "vmig rollout {}: {who}{}",
            crate::render::escape_controls(&self.args.cluster),
            crate::render::escape_controls(message)
        );
        if self.json {
            let e = Event {
                event,
                cluster: &self.args.cluster,
                host,
                message,
            };
            serde_json::to_writer(&mut *self.out, &e)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(self.out))
                .map_err(output::stdout_error)?;
        }
        Ok(())
    }

    /// Keeps the cluster lock alive (cheap when not due). A vCenter that does not answer
    /// stays an [`AdminError::Vcenter`], so that [`Rollout::explain`] can say so.
    async fn renew(&mut self) -> Result<(), AdminError> {
        if let Some(l) = &mut self.lock {
            l.renew_if_due().await.map_err(|e| match e {
                crate::lock::LockError::Vcenter(source) => AdminError::Vcenter {
                    vcenter: self.conn.target.host.clone(),
                    source,
                },
                other => AdminError::Incomplete(format!(
                    "{other}; run the same vmig rollout again to resume"
                )),
            })?;
        }
        Ok(())
    }

    /// True when this run wrote the record and the cluster no longer has it: vCenter was
    /// restarted without its data or restored from a backup. `false` when vCenter cannot be
    /// asked (that is reported as unreachable instead).
    async fn record_gone(&self) -> bool {
        if !self.written {
            return false;
        }
        match self.conn.client.custom_values(&self.cluster).await {
            Ok(values) => self.record_missing(&values),
            Err(_) => false,
        }
    }

    /// True when this run wrote the record and the cluster's `values` lack it.
    fn record_missing(&self, values: &CustomValues) -> bool {
        let (Some(key), true) = (self.field, self.written) else {
            return false;
        };
        values.get(key).is_none_or(|v| v.trim().is_empty())
    }

    /// The hosts this rollout has not finished, with their phase, for messages.
    fn in_progress(&self) -> String {
        let hosts: Vec<String> = self
            .record
            .hosts
            .iter()
            .filter(|(_, e)| e.phase != Phase::Done)
            .map(|(h, e)| format!("{h} ({})", e.phase.as_str()))
            .collect();
        if hosts.is_empty() {
            String::new()
        } else {
            format!(" with {} in progress", hosts.join(", "))
        }
    }

    /// The error for a rollout whose vCenter lost its record mid-way.
    fn lost_state(&self) -> AdminError {
        let (vc, cluster) = (&self.conn.target.host, &self.args.cluster);
        AdminError::Incomplete(format!(
            "vCenter {vc} no longer has this rollout's record on cluster {cluster}: was vCenter restarted without its data, or restored from a backup? The rollout stopped{}; vCenter may no longer show those hosts in maintenance mode. Check `vmig layout show --cluster {cluster}` (set the desired layout again if it is gone) and the hosts' maintenance mode in vCenter, then run the same vmig rollout again: it starts from what vCenter shows",
            self.in_progress()
        ))
    }

    /// Says what a failure of vCenter itself means for the rollout and what to do: vCenter
    /// not answering (the record stays there, so running again resumes), or vCenter back
    /// without the record (running again starts from what it shows). Anything else is
    /// returned as it is.
    async fn explain(&self, e: AdminError) -> AdminError {
        match e {
            AdminError::Vcenter { vcenter, source } if unreachable(&source) => {
                AdminError::Incomplete(format!(
                    "vCenter {vcenter} stopped answering ({source}). The rollout of cluster {cluster} stopped{}; hosts it put in maintenance mode stay there. Once vCenter answers again, run the same vmig rollout again: it resumes from its record in vCenter. A vCenter that comes back without its data has lost the desired layouts too: check `vmig layout show --cluster {cluster}` first",
                    self.in_progress(),
                    cluster = self.args.cluster,
                ))
            }
            other if self.record_gone().await => {
                tracing::debug!(error = %other, "the rollout record is gone");
                self.lost_state()
            }
            other => other,
        }
    }

    /// Follows `task` to its end (up to `--timeout-s`), renewing the cluster lock meanwhile:
    /// evacuating a host can take far longer than the lock's stale period.
    async fn follow(
        &mut self,
        task: &vcenter_client::TaskRef,
    ) -> Result<Result<(), vcenter_client::Error>, AdminError> {
        let deadline = Instant::now() + Duration::from_secs(self.args.timeout_s);
        loop {
            self.renew().await?;
            let slice = TaskWait {
                timeout: Duration::from_secs(15),
                ..TaskWait::default()
            };
            match self.conn.client.wait_for_task(task, slice).await {
                Ok(_) => return Ok(Ok(())),
                Err(vcenter_client::Error::TaskTimeout { .. }) if Instant::now() < deadline => {}
                // Not the task's failure but vCenter's: gone, or back without the task.
                Err(e)
                    if unreachable(&e)
                        || e.fault()
                            .is_some_and(|f| f.type_name == "ManagedObjectNotFound") =>
                {
                    return Err(AdminError::Vcenter {
                        vcenter: self.conn.target.host.clone(),
                        source: e,
                    });
                }
                Err(e) => return Ok(Err(e)),
            }
        }
    }

    async fn save(&mut self) -> Result<(), AdminError> {
        self.renew().await?;
        let Some(key) = self.field else {
            return Ok(());
        };
        let c = self.conn;
        self.record.updated_at = now(c).await?;
        c.client
            .set_custom_value(&self.cluster, key, &self.record.to_json())
            .await
            .map_err(vc_err(c))?;
        self.written = true;
        Ok(())
    }

    async fn set_phase(
        &mut self,
        host: &str,
        layout: &str,
        phase: Phase,
    ) -> Result<(), AdminError> {
        self.record.hosts.insert(
            host.to_string(),
            HostEntry {
                phase,
                layout: layout.to_string(),
            },
        );
        self.save().await
    }

    fn phase(&self, host: &str, layout: &str) -> Option<Phase> {
        self.record
            .hosts
            .get(host)
            .filter(|e| e.layout == layout)
            .map(|e| e.phase)
    }
}

/// Whether `e` means vCenter did not answer at all (network, or a proxy in front of it
/// saying it is down), as opposed to answering with a fault.
fn unreachable(e: &vcenter_client::Error) -> bool {
    matches!(
        e,
        vcenter_client::Error::Http { .. }
            | vcenter_client::Error::HttpStatus {
                status: 502..=504,
                ..
            }
    )
}

async fn now(c: &Connection) -> Result<String, AdminError> {
    Ok(crate::times::format_time(
        crate::times::vcenter_now(&c.client)
            .await
            .map_err(vc_err(c))?,
    ))
}

/// The rows of the cluster's hosts, with each host's ref.
/// The cluster's host rows, and its custom values as read with them (where the rollout's
/// record is), from one inventory read.
async fn read_rows(
    c: &Connection,
    cluster: &str,
) -> Result<(Vec<(HostRow, HostRef)>, Option<CustomValues>), AdminError> {
    let inv = Inventory::read(c).await?;
    let rows = show::rows(&inv, Some(cluster), None);
    let rows = rows
        .into_iter()
        .filter_map(|r| {
            let h = inv
                .hosts
                .iter()
                .find(|h| h.name.as_deref() == Some(r.host.as_str()))?;
            Some((r, h.moref.clone()))
        })
        .collect();
    let values = inv
        .clusters
        .into_iter()
        .find(|(cl, _)| cl.name == cluster)
        .map(|(_, v)| v);
    Ok((rows, values))
}

fn label(row: &HostRow) -> String {
    row.desired
        .as_ref()
        .map(|d| format!("{} v{}", d.name, d.version))
        .unwrap_or_default()
}

/// `vmig rollout`.
pub async fn run(
    conns: &[Connection],
    args: RolloutArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode, AdminError> {
    let mut found = None;
    for c in conns {
        let inv = Inventory::read(c).await?;
        if let Some((cl, values)) = inv.clusters.iter().find(|(cl, _)| cl.name == args.cluster) {
            check_layouts(&inv, &args.cluster)?;
            let existing = value(values, &keys_of(c, FIELD_ROLLOUT).await?).map(str::to_string);
            found = Some((c, cl.moref.clone(), existing));
            break;
        }
    }
    let Some((c, cluster_ref, existing)) = found else {
        return Err(AdminError::LayoutRefused(format!(
            "no cluster named `{}`; nothing was changed",
            args.cluster
        )));
    };
    let record = match existing.as_deref().map(Record::parse) {
        Some(Ok(r)) => r,
        Some(Err(e)) if !args.restart => {
            return Err(AdminError::LayoutRefused(format!(
                "the rollout record on cluster {} is unreadable ({e}); nothing was changed; run again with --restart to start over",
                args.cluster
            )));
        }
        _ => Record {
            schema: record::SCHEMA_V1.into(),
            started_by: c.target.credentials.user().chars().take(200).collect(),
            started_at: now(c).await?,
            updated_at: String::new(),
            hosts: Default::default(),
        },
    };
    let field = if args.dry_run {
        None
    } else {
        Some(
            c.client
                .ensure_custom_field(FIELD_ROLLOUT, None)
                .await
                .map_err(vc_err(c))?
                .key,
        )
    };
    // One rollout per cluster at a time: two would each keep `--max-unavailable`, together not.
    let lock = if args.dry_run {
        None
    } else {
        let what = format!("cluster {}", args.cluster);
        let who = c.target.credentials.user().to_string();
        Some(
            crate::lock::acquire(
                &c.client,
                crate::lock::Target::Cluster(&cluster_ref),
                &what,
                &who,
                "vmig rollout",
                Duration::from_secs(5),
            )
            .await
            .map_err(|e| match e {
                crate::lock::LockError::Busy { .. } => AdminError::LayoutRefused(format!(
                    "{e}: another vmig rollout of this cluster is running; nothing was changed"
                )),
                other => AdminError::Incomplete(other.to_string()),
            })?,
        )
    };
    let mut r = Rollout {
        conn: c,
        cluster: cluster_ref.as_moref().clone(),
        args: &args,
        json,
        out,
        field,
        record,
        lock,
        written: false,
    };
    let result = match drive(&mut r).await {
        Err(e) => Err(r.explain(e).await),
        done => done,
    };
    if let Some(l) = r.lock.take()
        && let Err(e) = l.release().await
    {
        tracing::warn!(error = %e, "could not release the rollout lock; it goes stale on its own");
    }
    result
}

async fn keys_of(c: &Connection, name: &str) -> Result<Vec<CustomFieldKey>, AdminError> {
    Ok(c.client
        .custom_field_defs()
        .await
        .map_err(vc_err(c))?
        .into_iter()
        .filter(|d| d.name == name)
        .map(|d| d.key)
        .collect())
}

/// Refuses before any change: an unreadable or impossible desired layout on any host, or no
/// desired layout at all.
fn check_layouts(inv: &Inventory<'_>, cluster: &str) -> Result<(), AdminError> {
    let mut any = false;
    for h in &inv.hosts {
        let name = h.name.clone().unwrap_or_default();
        if inv.cluster_of(h).map(|(c, _)| c.name.as_str()) != Some(cluster) {
            continue;
        }
        match inv.desired_for(h).0 {
            Desired::None => {}
            Desired::Invalid(e) => {
                return Err(AdminError::LayoutRefused(format!(
                    "host {name}: the desired layout is unreadable ({e}); no host was put in maintenance mode; fix it with vmig layout set"
                )));
            }
            Desired::Valid(v) => {
                any = true;
                let gpus: Vec<_> =
                    match crate::layout::target::agent_report(&h.custom_values, &inv.keys) {
                        Ok(Some(rep)) => rep.gpus.into_iter().map(|g| (name.clone(), g)).collect(),
                        _ => Vec::new(),
                    };
                validate::check(&v.1, &v.0.name, &gpus).map_err(|why| {
                    AdminError::LayoutRefused(format!(
                        "host {name}: layout {} refused: {why}; no host was put in maintenance mode",
                        v.0.label()
                    ))
                })?;
            }
        }
    }
    if any {
        Ok(())
    } else {
        Err(AdminError::LayoutRefused(format!(
            "no desired layout is set on cluster {cluster} or its hosts; set one with vmig layout set"
        )))
    }
}

/// Waits until no agent is still catching up with its desired version; then stops on the
/// first host that needs fixing. Returns the rows.
async fn settled_rows(
    r: &mut Rollout<'_>,
) -> Result<Result<Vec<(HostRow, HostRef)>, ExitCode>, AdminError> {
    let deadline = Instant::now() + Duration::from_secs(r.args.timeout_s);
    loop {
        r.renew().await?;
        let (rows, _) = read_rows(r.conn, &r.args.cluster).await?;
        let waiting = rows.iter().find_map(|(row, _)| match need(row) {
            Need::Waiting(w) => Some((row.host.clone(), w)),
            _ => None,
        });
        match waiting {
            Some((host, w)) if Instant::now() >= deadline => {
                r.event("stopped", Some(&host), &format!("its agent did not report on the desired layout in time ({w}); is reconcile on ([layout] source = \"vcenter\")?"))?;
                return Ok(Err(ExitCode::RolloutStopped));
            }
            Some(_) => tokio::time::sleep(POLL).await,
            None => break Ok(Ok(rows)),
        }
    }
}

async fn drive(r: &mut Rollout<'_>) -> Result<ExitCode, AdminError> {
    let rows = match settled_rows(r).await? {
        Ok(rows) => rows,
        Err(code) => return Ok(code),
    };
    for (row, _) in &rows {
        if let Need::Broken(why) = need(row) {
            r.event(
                "stopped",
                Some(&row.host),
                &format!("{why}; fix it, then run the same rollout again"),
            )?;
            return Ok(ExitCode::RolloutStopped);
        }
    }
    // Resumed hosts first (they may be in maintenance mode now), then the others by name. A
    // host this rollout put in maintenance mode is taken out again even when its desired
    // layout changed since (its record entry then names the older layout).
    let recorded = |h: &str| {
        r.record
            .hosts
            .get(h)
            .is_some_and(|e| e.phase != Phase::Done)
    };
    let mut todo: Vec<(String, HostRef, String)> = rows
        .iter()
        .filter(|(row, _)| recorded(&row.host) || need(row) != Need::Nothing)
        .map(|(row, href)| (row.host.clone(), href.clone(), label(row)))
        .collect();
    todo.sort_by_key(|(h, _, _)| (!recorded(h), h.clone()));
    if r.args.dry_run {
        for (row, _) in &rows {
            let what = match need(row) {
                Need::Nothing => "nothing to do".to_string(),
                Need::Reset => format!(
                    "maintenance mode, {} reboot, wait for {} applied, exit maintenance mode",
                    match r.args.reboot {
                        RebootMode::Host => "vmig",
                        RebootMode::Admin => "admin",
                    },
                    label(row)
                ),
                Need::Blocked(b) => format!(
                    "maintenance mode to free {b}, wait for {} applied, exit maintenance mode",
                    label(row)
                ),
                Need::Waiting(w) | Need::Broken(w) => w,
            };
            r.event("plan", Some(&row.host), &what)?;
        }
        return Ok(ExitCode::Ok);
    }
    for batch in todo.chunks(r.args.max_unavailable as usize) {
        let code = run_batch(r, batch).await?;
        if code != ExitCode::Ok {
            return Ok(code);
        }
    }
    r.record.hosts.clear();
    if let Some(key) = r.field {
        r.conn
            .client
            .set_custom_value(&r.cluster, key, "")
            .await
            .map_err(vc_err(r.conn))?;
    }
    r.event(
        "done",
        None,
        "every host reports its desired layout applied",
    )?;
    Ok(ExitCode::Ok)
}

/// Enters maintenance mode on each host of `batch`, then waits for each to be applied.
async fn run_batch(
    r: &mut Rollout<'_>,
    batch: &[(String, HostRef, String)],
) -> Result<ExitCode, AdminError> {
    let c = r.conn;
    let mut resumed_waiting = Vec::new();
    for (host, href, l) in batch {
        if crate::interrupt::interrupted() {
            return Err(AdminError::Incomplete(
                "interrupted; run the same vmig rollout again to resume".into(),
            ));
        }
        let phase = r.phase(host, l);
        if phase == Some(Phase::WaitingForReboot) {
            resumed_waiting.push(host.clone());
        }
        if matches!(
            phase,
            Some(Phase::Rebooting | Phase::WaitingForReboot | Phase::InMaintenance)
        ) {
            continue;
        }
        if !c
            .client
            .in_maintenance_mode(href)
            .await
            .map_err(vc_err(c))?
        {
            r.set_phase(host, l, Phase::Entering).await?;
            r.event(
                "entering-maintenance",
                Some(host),
                "entering maintenance mode (vCenter evacuates the VMs it can move)",
            )?;
            let task = c
                .client
                .enter_maintenance_mode(href, 0, false)
                .await
                .map_err(vc_err(c))?;
            if let Err(e) = r.follow(&task).await? {
                r.event("stopped", Some(host), &format!("cannot enter maintenance mode: {e}; move or power off the VMs that cannot move, then run the same rollout again"))?;
                return Ok(ExitCode::RolloutStopped);
            }
        }
        r.set_phase(host, l, Phase::InMaintenance).await?;
        r.event("in-maintenance", Some(host), "in maintenance mode")?;
    }
    wait_batch(r, batch, &resumed_waiting).await
}

/// Polls the agents of `batch` until each reports applied (then exits maintenance mode),
/// rebooting hosts that need it; stops on failure or timeout.
async fn wait_batch(
    r: &mut Rollout<'_>,
    batch: &[(String, HostRef, String)],
    resumed_waiting: &[String],
) -> Result<ExitCode, AdminError> {
    let c = r.conn;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(r.args.timeout_s);
    loop {
        if crate::interrupt::interrupted() {
            return Err(AdminError::Incomplete(
                "interrupted; run the same vmig rollout again to resume".into(),
            ));
        }
        r.renew().await?;
        let (rows, cluster_values) = read_rows(c, &r.args.cluster).await?;
        // Before reading the rows as progress: a vCenter that lost the record (restarted
        // empty) also lost the desired layouts, which would read as "changed".
        if cluster_values.is_some_and(|v| r.record_missing(&v)) {
            return Err(r.lost_state());
        }
        let mut remaining = 0;
        let mut admin_waits = 0;
        let mut last = String::new();
        for (host, href, l) in batch {
            if r.phase(host, l) == Some(Phase::Done) {
                continue;
            }
            remaining += 1;
            let Some((row, _)) = rows.iter().find(|(row, _)| &row.host == host) else {
                continue;
            };
            if &label(row) != l {
                r.event(
                    "stopped",
                    Some(host),
                    "its desired layout changed during the rollout; run vmig rollout again",
                )?;
                return Ok(ExitCode::RolloutStopped);
            }
            match need(row) {
                Need::Nothing => {
                    r.event(
                        "exiting-maintenance",
                        Some(host),
                        &format!("{l} applied; exiting maintenance mode"),
                    )?;
                    let task = c
                        .client
                        .exit_maintenance_mode(href, 0)
                        .await
                        .map_err(vc_err(c))?;
                    if let Err(e) = r.follow(&task).await? {
                        r.event(
                            "stopped",
                            Some(host),
                            &format!("cannot exit maintenance mode: {e}"),
                        )?;
                        return Ok(ExitCode::RolloutStopped);
                    }
                    r.set_phase(host, l, Phase::Done).await?;
                    r.event(
                        "done-host",
                        Some(host),
                        &format!("{l} applied; maintenance mode exited"),
                    )?;
                    remaining -= 1;
                }
                Need::Reset => match r.args.reboot {
                    RebootMode::Host => {
                        if r.phase(host, l) != Some(Phase::Rebooting) {
                            r.set_phase(host, l, Phase::Rebooting).await?;
                            r.event(
                                "rebooting",
                                Some(host),
                                "rebooting the host (RebootHost_Task)",
                            )?;
                            let rebooted = match c.client.reboot_host(href, false).await {
                                Ok(t) => r.follow(&t).await?,
                                Err(e) => Err(e),
                            };
                            if let Err(e) = rebooted {
                                r.event("stopped", Some(host), &format!("cannot reboot it: {e}; reboot it yourself and run the rollout again with --reboot admin"))?;
                                return Ok(ExitCode::RolloutStopped);
                            }
                        }
                        last = format!("{host}: waiting for the agent after the reboot");
                    }
                    RebootMode::Admin => {
                        let settling =
                            resumed_waiting.contains(host) && started.elapsed() < REBOOT_SETTLE;
                        if r.phase(host, l) != Some(Phase::WaitingForReboot) {
                            r.set_phase(host, l, Phase::WaitingForReboot).await?;
                        }
                        if !settling {
                            admin_waits += 1;
                        }
                        last = format!("{host}: waiting for the reboot");
                    }
                },
                Need::Blocked(b) | Need::Waiting(b) => last = format!("{host}: {b}"),
                Need::Broken(b) => {
                    r.event("stopped", Some(host), &format!("{b}; the host stays in maintenance mode; fix it, then run the same rollout again"))?;
                    return Ok(ExitCode::RolloutStopped);
                }
            }
        }
        if remaining == 0 {
            return Ok(ExitCode::Ok);
        }
        if admin_waits > 0 && admin_waits == remaining {
            for (host, _, l) in batch {
                if r.phase(host, l) == Some(Phase::WaitingForReboot) {
                    r.event(
                        "waiting-for-reboot",
                        Some(host),
                        "in maintenance mode; reboot it now, then run the same vmig rollout again",
                    )?;
                }
            }
            return Ok(ExitCode::WaitingForReboot);
        }
        if Instant::now() >= deadline {
            let host = last.split(':').next().unwrap_or_default().to_string();
            r.event(
                "stopped",
                Some(&host),
                &format!("timed out after {} s: {last}", r.args.timeout_s),
            )?;
            return Ok(ExitCode::RolloutStopped);
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::show::{DesiredView, GpuRow};
    use crate::layout::target::TargetKind;

    fn row(states: &[&str]) -> HostRow {
        HostRow {
            host: "esx-1".into(),
            cluster: Some("C".into()),
            desired: Some(DesiredView {
                name: "all-balanced".into(),
                version: 2,
                from: TargetKind::Cluster,
                set_by: "admin".into(),
                set_at: "2026-12-02T10:00:00Z".into(),
            }),
            desired_error: None,
            agent: "ok".into(),
            gpus: states
                .iter()
                .enumerate()
                .map(|(i, s)| GpuRow {
                    index: i as u32,
                    uuid: format!("GPU-{i}"),
                    name: "A100".into(),
                    state: (*s).into(),
                    agent_layout: None,
                    reason: None,
                    action: None,
                    blocked_by: if *s == "blocked-in-use" {
                        vec!["VM vm-7".into()]
                    } else {
                        vec![]
                    },
                })
                .collect(),
        }
    }

    /// Only a vCenter that does not answer (or a proxy saying it is down) is "unreachable";
    /// an answer, even an HTTP error from vCenter itself, is not.
    #[test]
    fn unreachable_means_no_answer() {
        let http = |status| vcenter_client::Error::HttpStatus {
            url: "https://vc/sdk".into(),
            method: "RetrieveProperties".into(),
            status,
            body: String::new(),
        };
        assert!(unreachable(&vcenter_client::Error::Http {
            url: "https://vc/sdk".into(),
            detail: "connection refused".into(),
        }));
        assert!(unreachable(&http(503)));
        assert!(!unreachable(&http(404)));
        assert!(!unreachable(&http(500)));
    }

    /// What stops a rollout wins over what a reset fixes, which wins over a blocked GPU.
    #[test]
    fn a_hosts_need_follows_its_worst_gpu() {
        assert_eq!(need(&row(&["applied", "applied"])), Need::Nothing);
        assert_eq!(need(&row(&["applied", "pending-reset"])), Need::Reset);
        assert_eq!(
            need(&row(&["pending-reset", "blocked-in-use"])),
            Need::Reset
        );
        assert!(matches!(need(&row(&["blocked-in-use"])), Need::Blocked(b) if b.contains("vm-7")));
        assert!(matches!(
            need(&row(&["pending-reset", "waiting-for-agent"])),
            Need::Waiting(_)
        ));
        for broken in ["failed", "invalid-layout", "local-override"] {
            assert!(
                matches!(need(&row(&["pending-reset", broken])), Need::Broken(_)),
                "{broken}"
            );
        }
        let mut r = row(&["applied"]);
        r.agent = "no report".into();
        assert!(matches!(need(&r), Need::Broken(_)));
        let mut r = row(&[]);
        r.desired = None;
        r.desired_error = Some("not valid JSON".into());
        assert!(matches!(need(&r), Need::Broken(_)));
        r.desired_error = None;
        assert_eq!(need(&r), Need::Nothing, "no desired layout: nothing to do");
    }
}
