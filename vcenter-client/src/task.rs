//! Waiting for `*_Task` methods to finish.
//!
//! `Task.info` is polled through the property collector with a capped
//! exponential backoff until its state is `success` or `error`. (vcsim 0.24
//! finishes tasks before the method returns, so the first poll usually ends
//! the wait there.) A failed task becomes [`Error::TaskFailed`] carrying the
//! typed `info.error` fault.

use std::time::Duration;

use serde::Serialize;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::moref::{MoRef, TaskRef};
use crate::soap::decode::Node;
use crate::soap::fault::Fault;

/// `TaskInfoState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskState {
    /// Waiting to run.
    Queued,
    /// Running.
    Running,
    /// Finished successfully.
    Success,
    /// Finished with `info.error`.
    Error,
}

impl std::str::FromStr for TaskState {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Ok(match s {
            "queued" => TaskState::Queued,
            "running" => TaskState::Running,
            "success" => TaskState::Success,
            "error" => TaskState::Error,
            _ => return Err(()),
        })
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Success => "success",
            TaskState::Error => "error",
        })
    }
}

/// The parts of `TaskInfo` callers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task.
    pub task: TaskRef,
    /// Operation name, e.g. `ReconfigVM_Task` (from `descriptionId` or `name`).
    pub operation: String,
    /// The object the task works on.
    pub entity: Option<MoRef>,
    /// Current state.
    pub state: TaskState,
    /// The fault, when `state` is `error`.
    pub error: Option<Fault>,
    /// The result value, when the method returns one.
    pub result: Option<Node>,
    /// Percent done, when reported.
    pub progress: Option<i32>,
}

impl TaskInfo {
    /// Decodes a `TaskInfo` value.
    pub fn from_node(task: &TaskRef, n: &Node) -> Result<Self> {
        Ok(TaskInfo {
            task: task.clone(),
            operation: n
                .child_string("descriptionId")
                .or_else(|| n.child_string("name"))
                .unwrap_or_default(),
            entity: n.child("entity").map(Node::to_moref).transpose()?,
            state: n
                .child_parse("state")?
                .ok_or_else(|| n.bad("a TaskInfo with a state"))?,
            error: n.child("error").map(Fault::from_localized),
            result: n.child("result").cloned(),
            progress: n.child_parse("progress")?,
        })
    }
}

/// How long and how often to poll a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskWait {
    /// Give up after this long (the task keeps running on the server).
    pub timeout: Duration,
    /// First poll interval; doubles up to `max_interval`.
    pub initial_interval: Duration,
    /// Longest poll interval.
    pub max_interval: Duration,
}

impl Default for TaskWait {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(2),
        }
    }
}

impl Client {
    /// Reads a task's current `info`.
    pub async fn task_info(&self, task: &TaskRef) -> Result<TaskInfo> {
        let oc = self.retrieve_object(task.as_moref(), &["info"]).await?;
        let info = oc
            .get("info")
            .ok_or_else(|| Error::NotFound(format!("{task} has no info property")))?;
        TaskInfo::from_node(task, info)
    }

    /// Polls `task` until it succeeds (returns its info) or fails
    /// ([`Error::TaskFailed`] with the fault). Privilege `System.Read`.
    pub async fn wait_for_task(&self, task: &TaskRef, wait: TaskWait) -> Result<TaskInfo> {
        let start = tokio::time::Instant::now();
        let mut interval = wait.initial_interval;
        loop {
            let info = self.task_info(task).await?;
            match info.state {
                TaskState::Success => return Ok(info),
                TaskState::Error => {
                    return Err(Error::TaskFailed {
                        task: task.clone(),
                        operation: info.operation,
                        fault: Box::new(info.error.unwrap_or_else(|| Fault {
                            kind: crate::FaultKind::Other,
                            type_name: "UnknownTaskError".into(),
                            message: "the task ended in state error without info.error".into(),
                        })),
                    });
                }
                TaskState::Queued | TaskState::Running => {}
            }
            let waited = start.elapsed();
            if waited >= wait.timeout {
                return Err(Error::TaskTimeout {
                    task: task.clone(),
                    state: info.state.to_string(),
                    waited,
                });
            }
            tokio::time::sleep(interval.min(wait.timeout - waited)).await;
            interval = (interval * 2).min(wait.max_interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::decode::parse_whole;

    #[test]
    fn failed_task_info_carries_typed_fault() {
        let doc = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><R xmlns="urn:vim25"><returnval xsi:type="TaskInfo">
<key>task-69</key><task type="Task">task-69</task><name>ReconfigVM_Task</name><descriptionId>VirtualMachine.reconfigure</descriptionId><entity type="VirtualMachine">vm-66</entity><entityName>DC0_H0_VM0</entityName>
<state>error</state><cancelled>false</cancelled><cancelable>false</cancelable>
<error><fault xsi:type="InvalidDeviceSpec"><property>virtualDeviceSpec.device</property><deviceIndex>0</deviceIndex></fault><localizedMessage>*types.InvalidDeviceSpec</localizedMessage></error>
<reason xsi:type="TaskReasonUser"><userName>user</userName></reason><queueTime>2026-11-24T10:00:00Z</queueTime></returnval></R></soapenv:Body></soapenv:Envelope>"#;
        let resp = parse_whole(doc.as_bytes(), "R").unwrap();
        let info = TaskInfo::from_node(&TaskRef::new("task-69"), resp.child("returnval").unwrap())
            .unwrap();
        assert_eq!(info.state, TaskState::Error);
        assert_eq!(info.operation, "VirtualMachine.reconfigure");
        assert_eq!(info.entity, Some(MoRef::new("VirtualMachine", "vm-66")));
        let f = info.error.unwrap();
        assert_eq!(f.type_name, "InvalidDeviceSpec");
        assert_eq!(f.message, "*types.InvalidDeviceSpec");
    }
}
