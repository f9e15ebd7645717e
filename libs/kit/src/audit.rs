//! The audit vocabulary, one type for producers (metadata, auth, scan) and the audit service's
//! check, and [`AuditLog`], the one client producers append with.
//!
//! An action that is not in [`Action`] cannot be written (the audit service refuses it) and
//! cannot be produced (producers only hold `Action`s): both sides change together.

use coffer_mesh::MeshChannel;
use coffer_proto::v1 as pb;
use coffer_proto::v1::audit_client::AuditClient;
use uuid::Uuid;

macro_rules! actions {
    ($($variant:ident => $name:literal,)*) => {
        /// What happened, as API.md lists it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            /// Every action.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The wire and column form (`file.download`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    FileUpload => "file.upload",
    FileDownload => "file.download",
    FileRename => "file.rename",
    FileMove => "file.move",
    FileDelete => "file.delete",
    FileRestore => "file.restore",
    FilePurge => "file.purge",
    FileRelease => "file.release",
    FileScanned => "file.scanned",
    FileQuarantined => "file.quarantined",
    FolderCreate => "folder.create",
    FolderRename => "folder.rename",
    FolderMove => "folder.move",
    FolderDelete => "folder.delete",
    ShareCreate => "share.create",
    ShareRevoke => "share.revoke",
    ShareDownload => "share.download",
    AuthLogin => "auth.login",
    AuthLoginFailed => "auth.login_failed",
    AuthPasswordChange => "auth.password_change",
    AuthTotpEnable => "auth.totp_enable",
    ApikeyCreate => "apikey.create",
    ApikeyRevoke => "apikey.revoke",
    MemberAdd => "member.add",
    MemberRemove => "member.remove",
    OrgDelete => "org.delete",
    OrgRestore => "org.restore",
    OrgPurge => "org.purge",
    OrgSettingsUpdate => "org.settings_update",
    ScanCompleted => "scan.completed",
    ScanDelete => "scan.delete",
    WebhookSet => "webhook.set",
    WebhookDelete => "webhook.delete",
}

impl Action {
    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action was done to: ids only, so a name can never get into the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    File(Uuid),
    Folder(Uuid),
    Share(Uuid),
    User(Uuid),
    ApiKey(Uuid),
    Org(Uuid),
    Scan(Uuid),
}

impl Target {
    const KINDS: [&'static str; 7] = ["file", "folder", "share", "user", "apikey", "org", "scan"];

    fn parts(self) -> (&'static str, Uuid) {
        match self {
            Target::File(id) => ("file", id),
            Target::Folder(id) => ("folder", id),
            Target::Share(id) => ("share", id),
            Target::User(id) => ("user", id),
            Target::ApiKey(id) => ("apikey", id),
            Target::Org(id) => ("org", id),
            Target::Scan(id) => ("scan", id),
        }
    }

    /// Parses `<kind>:<uuid>` (the hyphenated lowercase form only).
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, id) = s.split_once(':')?;
        let uuid = Uuid::try_parse(id).ok()?;
        if uuid.hyphenated().to_string() != id {
            return None;
        }
        Some(match kind {
            "file" => Target::File(uuid),
            "folder" => Target::Folder(uuid),
            "share" => Target::Share(uuid),
            "user" => Target::User(uuid),
            "apikey" => Target::ApiKey(uuid),
            "org" => Target::Org(uuid),
            "scan" => Target::Scan(uuid),
            _ => return None,
        })
    }

    /// The kinds a target may have, for error messages.
    pub fn kinds() -> &'static [&'static str] {
        &Self::KINDS
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, id) = self.parts();
        write!(f, "{kind}:{}", id.hyphenated())
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    /// The wire and column form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    /// Parses the column form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }

    /// The wire form.
    pub fn to_wire(self) -> i32 {
        match self {
            Outcome::Success => pb::Outcome::Success as i32,
            Outcome::Failure => pb::Outcome::Failure as i32,
        }
    }

    /// Reads the wire form; `None` for unspecified or unknown values.
    pub fn from_wire(v: i32) -> Option<Self> {
        match pb::Outcome::try_from(v).ok()? {
            pb::Outcome::Success => Some(Outcome::Success),
            pb::Outcome::Failure => Some(Outcome::Failure),
            pb::Outcome::Unspecified => None,
        }
    }
}

/// The audit log did not take an event: the action it records must not happen (or, for a
/// background job, must be retried). Carries the status for the caller's mapping and logs.
#[derive(Debug, thiserror::Error)]
#[error("the audit log did not take the event: {}", .0.code())]
pub struct AuditRefused(pub tonic::Status);

/// The one way a service appends to the audit log.
#[derive(Debug, Clone)]
pub struct AuditLog(AuditClient<MeshChannel>);

impl AuditLog {
    /// A client on a mesh channel to the audit service.
    pub fn new(channel: MeshChannel) -> Self {
        AuditLog(AuditClient::new(channel))
    }

    /// Records a successful action as the current caller (the user token of the call context):
    /// the audit service takes the org and the actor from the token.
    pub async fn record(&self, action: Action, target: Target) -> Result<(), AuditRefused> {
        self.append(action, target, Outcome::Success, None).await
    }

    /// Records a system event of this service for `org`, with no user token (the audit service
    /// names this service as the actor).
    pub async fn record_system(
        &self,
        org: Uuid,
        action: Action,
        target: Target,
        outcome: Outcome,
    ) -> Result<(), AuditRefused> {
        self.append(action, target, outcome, Some(org)).await
    }

    async fn append(
        &self,
        action: Action,
        target: Target,
        outcome: Outcome,
        org: Option<Uuid>,
    ) -> Result<(), AuditRefused> {
        self.0
            .clone()
            .append(pb::AppendRequest {
                action: action.as_str().to_owned(),
                target: target.to_string(),
                outcome: outcome.to_wire(),
                org_id: org.map(|o| o.to_string()).unwrap_or_default(),
            })
            .await
            .map(|_| ())
            .map_err(AuditRefused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_and_looks_like_kind_dot_verb() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
            let (kind, verb) = a.as_str().split_once('.').unwrap();
            assert!(!kind.is_empty() && !verb.is_empty(), "{a}");
            assert!(
                a.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
            );
        }
        assert_eq!(Action::parse("file.nonsense"), None);
        assert_eq!(Action::OrgPurge.as_str(), "org.purge");
    }

    #[test]
    fn targets_are_ids_only() {
        let id = Uuid::new_v4();
        for t in [
            Target::File(id),
            Target::Folder(id),
            Target::Share(id),
            Target::User(id),
            Target::ApiKey(id),
            Target::Org(id),
            Target::Scan(id),
        ] {
            assert_eq!(Target::parse(&t.to_string()), Some(t));
        }
        assert_eq!(Target::parse(&format!("file:{}", id.simple())), None);
        assert_eq!(
            Target::parse(&format!("file:{}", id.hyphenated()).to_uppercase()),
            None
        );
        assert_eq!(Target::parse("file:contract.pdf"), None);
        assert_eq!(Target::parse(&format!("planet:{id}")), None);
        assert_eq!(Target::kinds().len(), 7);
    }
}
