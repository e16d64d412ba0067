//! Typed Box API models (serde), tolerant where Box is loose: ids may be strings or numbers,
//! `size` may come in exponent form, `next_stream_position` may be a string or a number, and a
//! 409's `conflicts` may be one object or an array.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Why Box refuses a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameProblem {
    /// Empty, `.`, `..`, a trailing space, `/`, `\` or non-printable ASCII.
    Invalid,
    /// More than 255 characters.
    TooLong,
}

/// Box's naming rules (1–255 characters, no `/` or `\`, no non-printable ASCII, no trailing
/// space, not `.` or `..`); `None` when the name is acceptable.
pub fn name_problem(name: &str) -> Option<NameProblem> {
    if name.chars().count() > 255 {
        return Some(NameProblem::TooLong);
    }
    let invalid = name.is_empty()
        || name == "."
        || name == ".."
        || name.ends_with(' ')
        || name.chars().any(|c| c == '/' || c == '\\' || (c as u32) < 0x20 || c as u32 == 0x7f);
    invalid.then_some(NameProblem::Invalid)
}

/// An id that Box sends as a string (sometimes as a number).
pub fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}

fn de_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}

/// A byte count that may arrive as `1.2e10` (rclone #2261) or as a string.
pub fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    let parsed = match &v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64)),
        Value::String(s) => s.parse::<u64>().ok().or_else(|| s.parse::<f64>().ok().map(|f| f.round() as u64)),
        Value::Null => Some(0),
        _ => None,
    };
    parsed.ok_or_else(|| serde::de::Error::custom(format!("expected a size, got {v}")))
}

/// A stream position: a string or a (possibly > 2^53) integer.
pub fn de_position<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_id(d)
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct FolderMini {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct PathCollection {
    #[serde(default)]
    pub total_count: u64,
    #[serde(default)]
    pub entries: Vec<FolderMini>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct FileVersion {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(default)]
    pub sha1: Option<String>,
}

/// One version of a file as `GET /files/{id}/versions` lists it (the older versions; Box
/// leaves the current one out).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Version {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(default)]
    pub sha1: Option<String>,
    #[serde(default, deserialize_with = "de_size")]
    pub size: u64,
    /// When the version was uploaded.
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub modified_at: Option<String>,
    /// Set when the version was deleted (it can no longer be downloaded).
    #[serde(default)]
    pub trashed_at: Option<String>,
}

/// One page of `GET /files/{id}/versions` (offset paging).
#[derive(Clone, Debug, Deserialize)]
pub struct VersionsPage {
    #[serde(default)]
    pub entries: Vec<Version>,
    #[serde(default)]
    pub total_count: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Permissions {
    #[serde(default)]
    pub can_download: bool,
    #[serde(default)]
    pub can_upload: bool,
    #[serde(default)]
    pub can_rename: bool,
    #[serde(default)]
    pub can_delete: bool,
}

/// Fields shared by files, folders and web links; what a `stat` needs. Read through
/// [`RawItem`], as part of a file, folder, web link or [`Item`].
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ItemCommon {
    pub id: String,
    pub name: String,
    pub etag: Option<String>,
    pub sequence_id: Option<String>,
    pub size: u64,
    pub created_at: Option<String>,
    pub modified_at: Option<String>,
    pub content_created_at: Option<String>,
    pub content_modified_at: Option<String>,
    pub parent: Option<FolderMini>,
    pub path_collection: Option<PathCollection>,
    pub item_status: Option<String>,
    pub permissions: Option<Permissions>,
    /// The metadata instances asked for with `fields=metadata.<scope>.<template>`; `None` when
    /// the response does not carry them (not asked for, or an event's source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ItemMetadata>,
}

/// An item as Box sends it, every kind's fields in one flat struct read in a single pass (an
/// internally tagged enum of flattened structs buffers each item twice: a listing of 100,000
/// items spent most of its parsing time there).
#[derive(Deserialize)]
struct RawItem {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(deserialize_with = "de_id")]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default, deserialize_with = "de_opt_id")]
    sequence_id: Option<String>,
    #[serde(default, deserialize_with = "de_size")]
    size: u64,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    modified_at: Option<String>,
    #[serde(default)]
    content_created_at: Option<String>,
    #[serde(default)]
    content_modified_at: Option<String>,
    #[serde(default)]
    parent: Option<FolderMini>,
    #[serde(default)]
    path_collection: Option<PathCollection>,
    #[serde(default)]
    item_status: Option<String>,
    #[serde(default)]
    permissions: Option<Permissions>,
    #[serde(default)]
    metadata: Option<ItemMetadata>,
    #[serde(default)]
    sha1: Option<String>,
    #[serde(default)]
    file_version: Option<FileVersion>,
    #[serde(default, deserialize_with = "de_present")]
    lock: Option<Option<Lock>>,
    #[serde(default)]
    url: Option<String>,
}

/// What only files have: sha1, version and lock.
type FileFields = (Option<String>, Option<FileVersion>, Option<Option<Lock>>);

impl RawItem {
    fn split(self) -> (ItemCommon, FileFields, Option<String>) {
        let common = ItemCommon {
            id: self.id,
            name: self.name,
            etag: self.etag,
            sequence_id: self.sequence_id,
            size: self.size,
            created_at: self.created_at,
            modified_at: self.modified_at,
            content_created_at: self.content_created_at,
            content_modified_at: self.content_modified_at,
            parent: self.parent,
            path_collection: self.path_collection,
            item_status: self.item_status,
            permissions: self.permissions,
            metadata: self.metadata,
        };
        (common, (self.sha1, self.file_version, self.lock), self.url)
    }
}

impl From<RawItem> for File {
    fn from(raw: RawItem) -> File {
        let (common, (sha1, file_version, lock), _) = raw.split();
        File { common, sha1, file_version, lock }
    }
}

impl From<RawItem> for Folder {
    fn from(raw: RawItem) -> Folder {
        Folder { common: raw.split().0 }
    }
}

impl From<RawItem> for WebLink {
    fn from(raw: RawItem) -> WebLink {
        let (common, _, url) = raw.split();
        WebLink { common, url }
    }
}

impl TryFrom<RawItem> for Item {
    type Error = String;

    fn try_from(raw: RawItem) -> Result<Item, String> {
        match raw.kind.as_deref() {
            Some("file") => Ok(Item::File(raw.into())),
            Some("folder") => Ok(Item::Folder(raw.into())),
            Some("web_link") => Ok(Item::WebLink(raw.into())),
            Some(other) => Err(format!("unknown item type `{other}`")),
            None => Err("an item without a type".into()),
        }
    }
}

/// An item's `metadata` field: the instances asked for, by scope and template. Only the
/// `global.properties` instance is read (free-form key-value pairs, Box's own template).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct ItemMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalMetadata>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct GlobalMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Map<String, Value>>,
}

impl ItemCommon {
    /// The item's `global.properties` instance: `None` when the response does not say,
    /// `Some(None)` when the item has none.
    pub fn properties(&self) -> Option<Option<&Map<String, Value>>> {
        let m = self.metadata.as_ref()?;
        Some(m.global.as_ref().and_then(|g| g.properties.as_ref()))
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(from = "RawItem")]
pub struct File {
    #[serde(flatten)]
    pub common: ItemCommon,
    pub sha1: Option<String>,
    pub file_version: Option<FileVersion>,
    /// The file's lock, when the response carries the `lock` field (`Some(None)`: unlocked;
    /// `None`: not asked for, or an event's source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<Option<Lock>>,
}

/// A field that may be absent (`None`, through `#[serde(default)]`), `null` (`Some(None)`) or
/// set (`Some(Some(v))`).
fn de_present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(from = "RawItem")]
pub struct Folder {
    #[serde(flatten)]
    pub common: ItemCommon,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(from = "RawItem")]
pub struct WebLink {
    #[serde(flatten)]
    pub common: ItemCommon,
    pub url: Option<String>,
}

/// An item's shared link, as far as boxfs reads it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SharedLink {
    pub url: String,
    #[serde(default)]
    pub access: Option<String>,
    #[serde(default)]
    pub unshared_at: Option<String>,
    #[serde(default)]
    pub is_password_enabled: bool,
}

/// A user as Box names them in other objects (`User--Mini`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct UserMini {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub login: String,
}

/// A lock on a file: who holds it and until when (`expired_at`; none: until unlocked).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Lock {
    #[serde(default)]
    pub created_by: Option<UserMini>,
    #[serde(default)]
    pub expired_at: Option<String>,
    #[serde(default)]
    pub is_download_prevented: bool,
}

/// An item's `shared_link` and (files only) `lock`: `None` when it has none.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Sharing {
    /// The item's etag after the request (a change of its link or lock changes it).
    #[serde(default)]
    pub etag: Option<String>,
    /// A file's current version (to tell whether anything but its link changed).
    #[serde(default)]
    pub file_version: Option<FileVersion>,
    #[serde(default)]
    pub shared_link: Option<SharedLink>,
    #[serde(default)]
    pub lock: Option<Lock>,
}

/// An entry of a folder listing (or an event source).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "RawItem")]
pub enum Item {
    File(File),
    Folder(Folder),
    WebLink(WebLink),
}

/// A representation of an item (a file, folder or web link, or any of them).
pub trait HasCommon {
    fn common_mut(&mut self) -> &mut ItemCommon;
}

impl HasCommon for File {
    fn common_mut(&mut self) -> &mut ItemCommon {
        &mut self.common
    }
}

impl HasCommon for Folder {
    fn common_mut(&mut self) -> &mut ItemCommon {
        &mut self.common
    }
}

impl HasCommon for Item {
    fn common_mut(&mut self) -> &mut ItemCommon {
        match self {
            Item::File(f) => &mut f.common,
            Item::Folder(f) => &mut f.common,
            Item::WebLink(w) => &mut w.common,
        }
    }
}

impl Item {
    pub fn common(&self) -> &ItemCommon {
        match self {
            Item::File(f) => &f.common,
            Item::Folder(f) => &f.common,
            Item::WebLink(w) => &w.common,
        }
    }

    pub fn id(&self) -> &str {
        &self.common().id
    }

    pub fn name(&self) -> &str {
        &self.common().name
    }
}

/// One page of `GET /folders/{id}/items` (marker or offset flavour).
#[derive(Clone, Debug, Deserialize)]
pub struct ItemsPage {
    #[serde(default)]
    pub entries: Vec<Item>,
    #[serde(default)]
    pub next_marker: Option<String>,
    #[serde(default)]
    pub total_count: Option<u64>,
    #[serde(default)]
    pub offset: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
}

/// `{total_count, entries}` as uploads answer.
#[derive(Clone, Debug, Deserialize)]
pub struct Files {
    pub entries: Vec<File>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct User {
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub login: String,
    #[serde(default, deserialize_with = "de_size")]
    pub space_amount: u64,
    #[serde(default, deserialize_with = "de_size")]
    pub space_used: u64,
    #[serde(default, deserialize_with = "de_size")]
    pub max_upload_size: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub event_type: EventKind,
    #[serde(default)]
    pub created_at: Option<String>,
    /// Usually a file or folder; other shapes (users, collaborations) are kept as raw JSON.
    #[serde(default)]
    pub source: Option<Value>,
}

impl Event {
    /// The item this event is about, when its source is a file, folder or web link.
    pub fn item(&self) -> Option<Item> {
        self.source.as_ref().and_then(|s| serde_json::from_value(s.clone()).ok())
    }
}

/// The type of a Box event (`event_type`): the types boxfs acts on, and any other as
/// [`EventKind::Other`] with Box's name for it. (De)serialized as Box's name.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub enum EventKind {
    ItemCreate,
    ItemUpload,
    ItemMove,
    ItemRename,
    ItemTrash,
    ItemUndeleteViaTrash,
    ItemCopy,
    ItemModify,
    ItemMakeCurrentVersion,
    /// Not in Box's published list of event types; taken as a removal should it come.
    ItemDelete,
    MetadataInstanceCreate,
    MetadataInstanceUpdate,
    MetadataInstanceDelete,
    CollabAddCollaborator,
    CollabRoleChange,
    CollabRemoveCollaborator,
    Other(String),
}

impl EventKind {
    /// Box's name for it.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::ItemCreate => "ITEM_CREATE",
            EventKind::ItemUpload => "ITEM_UPLOAD",
            EventKind::ItemMove => "ITEM_MOVE",
            EventKind::ItemRename => "ITEM_RENAME",
            EventKind::ItemTrash => "ITEM_TRASH",
            EventKind::ItemUndeleteViaTrash => "ITEM_UNDELETE_VIA_TRASH",
            EventKind::ItemCopy => "ITEM_COPY",
            EventKind::ItemModify => "ITEM_MODIFY",
            EventKind::ItemMakeCurrentVersion => "ITEM_MAKE_CURRENT_VERSION",
            EventKind::ItemDelete => "ITEM_DELETE",
            EventKind::MetadataInstanceCreate => "METADATA_INSTANCE_CREATE",
            EventKind::MetadataInstanceUpdate => "METADATA_INSTANCE_UPDATE",
            EventKind::MetadataInstanceDelete => "METADATA_INSTANCE_DELETE",
            EventKind::CollabAddCollaborator => "COLLAB_ADD_COLLABORATOR",
            EventKind::CollabRoleChange => "COLLAB_ROLE_CHANGE",
            EventKind::CollabRemoveCollaborator => "COLLAB_REMOVE_COLLABORATOR",
            EventKind::Other(name) => name,
        }
    }

    /// The item itself changed: its content, name, place or existence (the source is the item).
    pub fn changes_item(&self) -> bool {
        use EventKind::*;
        matches!(
            self,
            ItemCreate
                | ItemUpload
                | ItemMove
                | ItemRename
                | ItemTrash
                | ItemUndeleteViaTrash
                | ItemCopy
                | ItemModify
                | ItemMakeCurrentVersion
                | ItemDelete
        )
    }

    /// The item left the user's tree (to the trash, or for good).
    pub fn removes_item(&self) -> bool {
        matches!(self, EventKind::ItemTrash | EventKind::ItemDelete)
    }

    /// The item changed where it is (a new or restored version, an edit of its details): its
    /// name and parent stay, so listings stay valid.
    pub fn changes_in_place(&self) -> bool {
        matches!(self, EventKind::ItemUpload | EventKind::ItemModify | EventKind::ItemMakeCurrentVersion)
    }

    /// One of the item's metadata instances was created, updated or deleted (the source is the
    /// item, without its metadata).
    pub fn changes_metadata(&self) -> bool {
        use EventKind::*;
        matches!(self, MetadataInstanceCreate | MetadataInstanceUpdate | MetadataInstanceDelete)
    }

    /// The user's rights changed: a collaboration was added, changed or removed.
    pub fn changes_rights(&self) -> bool {
        use EventKind::*;
        matches!(self, CollabAddCollaborator | CollabRoleChange | CollabRemoveCollaborator)
    }
}

impl From<String> for EventKind {
    fn from(name: String) -> EventKind {
        match name.as_str() {
            "ITEM_CREATE" => EventKind::ItemCreate,
            "ITEM_UPLOAD" => EventKind::ItemUpload,
            "ITEM_MOVE" => EventKind::ItemMove,
            "ITEM_RENAME" => EventKind::ItemRename,
            "ITEM_TRASH" => EventKind::ItemTrash,
            "ITEM_UNDELETE_VIA_TRASH" => EventKind::ItemUndeleteViaTrash,
            "ITEM_COPY" => EventKind::ItemCopy,
            "ITEM_MODIFY" => EventKind::ItemModify,
            "ITEM_MAKE_CURRENT_VERSION" => EventKind::ItemMakeCurrentVersion,
            "ITEM_DELETE" => EventKind::ItemDelete,
            "METADATA_INSTANCE_CREATE" => EventKind::MetadataInstanceCreate,
            "METADATA_INSTANCE_UPDATE" => EventKind::MetadataInstanceUpdate,
            "METADATA_INSTANCE_DELETE" => EventKind::MetadataInstanceDelete,
            "COLLAB_ADD_COLLABORATOR" => EventKind::CollabAddCollaborator,
            "COLLAB_ROLE_CHANGE" => EventKind::CollabRoleChange,
            "COLLAB_REMOVE_COLLABORATOR" => EventKind::CollabRemoveCollaborator,
            _ => EventKind::Other(name),
        }
    }
}

impl From<EventKind> for String {
    fn from(kind: EventKind) -> String {
        match kind {
            EventKind::Other(name) => name,
            known => known.as_str().to_string(),
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct EventsPage {
    #[serde(default)]
    pub entries: Vec<Event>,
    #[serde(deserialize_with = "de_position")]
    pub next_stream_position: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RealtimeServer {
    pub url: String,
    #[serde(default)]
    pub retry_timeout: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RealtimeServers {
    pub entries: Vec<RealtimeServer>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SessionEndpoints {
    pub upload_part: String,
    pub commit: String,
    pub abort: String,
    pub list_parts: String,
    pub status: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct UploadSession {
    pub id: String,
    #[serde(deserialize_with = "de_size")]
    pub part_size: u64,
    #[serde(deserialize_with = "de_size")]
    pub total_parts: u64,
    #[serde(default, deserialize_with = "de_size")]
    pub num_parts_processed: u64,
    pub session_endpoints: SessionEndpoints,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct UploadPart {
    pub part_id: String,
    #[serde(deserialize_with = "de_size")]
    pub offset: u64,
    #[serde(deserialize_with = "de_size")]
    pub size: u64,
    pub sha1: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct UploadedPart {
    pub part: UploadPart,
}

#[derive(Clone, Debug, Deserialize)]
pub struct UploadParts {
    #[serde(default)]
    pub entries: Vec<UploadPart>,
    #[serde(default)]
    pub total_count: Option<u64>,
}

/// Box's error body.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub context_info: Option<Value>,
}

impl ErrorBody {
    /// The conflicting items of a 409, whether Box sent one object or an array.
    pub fn conflicts(&self) -> Vec<Value> {
        match self.context_info.as_ref().and_then(|c| c.get("conflicts")) {
            Some(Value::Array(items)) => items.clone(),
            Some(obj @ Value::Object(_)) => vec![obj.clone()],
            _ => Vec::new(),
        }
    }
}

/// The OAuth token endpoint's answer.
#[derive(Clone, Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// The OAuth token endpoint's error.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct OAuthErrorBody {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_parsing() {
        let f: Item =
            serde_json::from_str(r#"{"type":"file","id":12,"name":"a","size":1.2e10,"sequence_id":"3"}"#).unwrap();
        assert_eq!(f.id(), "12");
        assert_eq!(f.common().size, 12_000_000_000);
        let p: EventsPage =
            serde_json::from_str(r#"{"entries":[],"next_stream_position":1152922976252290886}"#).unwrap();
        assert_eq!(p.next_stream_position, "1152922976252290886");
        let p: EventsPage = serde_json::from_str(r#"{"entries":[],"next_stream_position":"42"}"#).unwrap();
        assert_eq!(p.next_stream_position, "42");
        let one: ErrorBody = serde_json::from_str(r#"{"context_info":{"conflicts":{"id":"1"}}}"#).unwrap();
        let many: ErrorBody =
            serde_json::from_str(r#"{"context_info":{"conflicts":[{"id":"1"},{"id":"2"}]}}"#).unwrap();
        assert_eq!((one.conflicts().len(), many.conflicts().len()), (1, 2));
        let root: Item =
            serde_json::from_str(r#"{"type":"folder","id":"0","sequence_id":null,"etag":null,"name":"All Files"}"#)
                .unwrap();
        assert!(matches!(root, Item::Folder(_)));
    }

    #[test]
    fn items_of_each_kind_read_in_one_pass_and_round_trip() {
        let file: Item = serde_json::from_str(
            r#"{"type":"file","id":"7","name":"a.txt","size":3,"sha1":"ab","file_version":{"id":9,"sha1":"ab"},
                "parent":{"id":"0","name":"All Files"},"permissions":{"can_download":true,"can_share":true},
                "metadata":{"global":{"properties":{"boxfs_mode":"644"}}},"unknown":[1,2]}"#,
        )
        .unwrap();
        let Item::File(f) = &file else { panic!("a file: {file:?}") };
        assert_eq!((f.sha1.as_deref(), f.file_version.as_ref().map(|v| v.id.as_str())), (Some("ab"), Some("9")));
        assert!(f.common.permissions.as_ref().unwrap().can_download);
        assert!(f.common.properties().unwrap().unwrap().contains_key("boxfs_mode"));
        let link: Item = serde_json::from_str(r#"{"type":"web_link","id":"8","url":"https://x"}"#).unwrap();
        assert!(matches!(&link, Item::WebLink(w) if w.url.as_deref() == Some("https://x")));
        for item in [&file, &link] {
            let again: Item = serde_json::from_str(&serde_json::to_string(item).unwrap()).unwrap();
            assert_eq!(&again, item);
        }
        let alone: File = serde_json::from_str(r#"{"id":"7","name":"a.txt","sha1":"ab"}"#).unwrap();
        assert_eq!(alone.sha1.as_deref(), Some("ab"));
        let err = serde_json::from_str::<Item>(r#"{"type":"collaboration","id":"1"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown item type `collaboration`"), "{err}");
    }

    #[test]
    fn event_kinds_decode_from_box_names_and_unknown_ones_keep_theirs() {
        let known = [
            "ITEM_CREATE",
            "ITEM_UPLOAD",
            "ITEM_MOVE",
            "ITEM_RENAME",
            "ITEM_TRASH",
            "ITEM_UNDELETE_VIA_TRASH",
            "ITEM_COPY",
            "ITEM_MODIFY",
            "ITEM_MAKE_CURRENT_VERSION",
            "ITEM_DELETE",
            "METADATA_INSTANCE_CREATE",
            "METADATA_INSTANCE_UPDATE",
            "METADATA_INSTANCE_DELETE",
            "COLLAB_ADD_COLLABORATOR",
            "COLLAB_ROLE_CHANGE",
            "COLLAB_REMOVE_COLLABORATOR",
        ];
        for name in known {
            let kind: EventKind = serde_json::from_value(Value::from(name)).unwrap();
            assert!(!matches!(kind, EventKind::Other(_)), "{name} is known");
            assert_eq!((kind.as_str(), serde_json::to_value(&kind).unwrap()), (name, Value::from(name)));
        }
        let ev: Event = serde_json::from_str(
            r#"{"type":"event","event_id":"e1","event_type":"LOCK_CREATE","source":{"type":"file","id":"7"}}"#,
        )
        .unwrap();
        assert_eq!(ev.event_type, EventKind::Other("LOCK_CREATE".into()));
        assert_eq!(
            (ev.event_type.to_string(), ev.item().map(|i| i.id().to_string())),
            ("LOCK_CREATE".into(), Some("7".into()))
        );
        let ev: Event = serde_json::from_str(r#"{"event_id":"e2","event_type":"ITEM_RENAME"}"#).unwrap();
        assert_eq!(ev.event_type, EventKind::ItemRename);
    }

    #[test]
    fn event_kinds_say_what_they_change() {
        use EventKind::*;
        let says = |k: &EventKind| {
            [k.changes_item(), k.removes_item(), k.changes_in_place(), k.changes_metadata(), k.changes_rights()]
        };
        let (f, t) = (false, true);
        let table = [
            (ItemCreate, [t, f, f, f, f]),
            (ItemUpload, [t, f, t, f, f]),
            (ItemMove, [t, f, f, f, f]),
            (ItemRename, [t, f, f, f, f]),
            (ItemTrash, [t, t, f, f, f]),
            (ItemUndeleteViaTrash, [t, f, f, f, f]),
            (ItemCopy, [t, f, f, f, f]),
            (ItemModify, [t, f, t, f, f]),
            (ItemMakeCurrentVersion, [t, f, t, f, f]),
            (ItemDelete, [t, t, f, f, f]),
            (MetadataInstanceCreate, [f, f, f, t, f]),
            (MetadataInstanceUpdate, [f, f, f, t, f]),
            (MetadataInstanceDelete, [f, f, f, t, f]),
            (CollabAddCollaborator, [f, f, f, f, t]),
            (CollabRoleChange, [f, f, f, f, t]),
            (CollabRemoveCollaborator, [f, f, f, f, t]),
            (Other("LOCK_CREATE".into()), [f, f, f, f, f]),
            (Other("COLLAB_INVITE_COLLABORATOR".into()), [f, f, f, f, f]),
        ];
        for (kind, expected) in table {
            assert_eq!(says(&kind), expected, "{kind}");
        }
    }

    #[test]
    fn the_properties_instance_is_known_only_when_the_response_carries_metadata() {
        let parse = |v: Value| serde_json::from_value::<Item>(v).unwrap();
        let event_source = parse(serde_json::json!({"type": "file", "id": "1"}));
        assert_eq!(event_source.common().properties(), None, "not asked for: unknown");
        let without = parse(serde_json::json!({"type": "file", "id": "1", "metadata": {}}));
        assert_eq!(without.common().properties(), Some(None), "asked for: it has none");
        let with = parse(serde_json::json!({"type": "folder", "id": "2", "metadata": {"global": {"properties":
            {"$id": "x", "boxfs_mode": "0700"}}}}));
        assert_eq!(with.common().properties().unwrap().unwrap()["boxfs_mode"], "0700");
    }
}
