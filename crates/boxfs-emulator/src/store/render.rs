//! Renders store rows as Box JSON: the mini, standard and `fields=` representations of files,
//! folders and web links (with their permissions, shared link, lock and
//! `metadata.<scope>.<template>` instances), metadata instances, file versions, users and
//! collaborations. It sits below the store's changes, which keep what they render: an event's
//! `source` (the item as it was) and the conflicting item of a 409.
//!
//! An item's fields are values borrowed from its row ([`Field`]) in a sorted key layout worked
//! out once per representation ([`Layout`]): a single item becomes a `serde_json::Value`
//! ([`Source::value`]), a listing page's items are written straight into its body
//! ([`Source::write`]), the same fields either way.

use super::{
    Ancestor, Collaboration, Extras, Item, Kind, Lock, MetadataInstance, Perms, SharedLink, Status, User, UserRole,
    Version, Wanted, ENTERPRISE_ID,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// What rendering needs besides the rows: the origin that shared-link URLs point at, the root
/// of the user the answer is for (shown to them as folder `0`) and the enterprise's users (the
/// owners and lock holders named in items).
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    pub base_url: &'a str,
    pub viewer_root: i64,
    pub users: &'a [User],
}

impl Ctx<'_> {
    fn user_by_id(&self, id: &str) -> Value {
        match self.users.iter().find(|u| u.id == id) {
            Some(u) => user_mini(u),
            None => json!({"type": "user", "id": id, "name": "", "login": ""}),
        }
    }

    fn owner(&self, item: &Item) -> Value {
        match self.users.iter().find(|u| u.root_id == item.root_id) {
            Some(u) => user_mini(u),
            None => json!({"type": "user", "id": "", "name": "", "login": ""}),
        }
    }
}

/// Which representation of an item to return.
#[derive(Clone, Debug)]
pub enum Repr {
    /// What listings return by default.
    Mini,
    /// What `GET /files/{id}` and friends return by default.
    Standard,
    /// The standard fields plus the `--Full` extras (uploads answer with this).
    Full,
    /// `fields=a,b,c`: the base fields (`type`, `id`, `etag`) plus those asked for.
    Fields(Vec<String>),
}

impl Repr {
    /// From an optional `fields` query parameter, with `default` when absent.
    pub fn from_query(fields: Option<&str>, default: Repr) -> Repr {
        match fields {
            Some(f) if !f.trim().is_empty() => {
                Repr::Fields(f.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            }
            _ => default,
        }
    }

    pub fn wants(&self, field: &str) -> bool {
        match self {
            Repr::Fields(list) => list.iter().any(|f| f == field),
            Repr::Standard | Repr::Full => true,
            Repr::Mini => false,
        }
    }

    /// The extras this representation shows.
    pub fn wanted(&self) -> Wanted {
        match self {
            Repr::Mini => Wanted::default(),
            Repr::Standard => Wanted { shared_link: true, ..Wanted::default() },
            Repr::Full => Wanted { shared_link: true, lock: true, metadata: false, collaborations: true },
            Repr::Fields(list) => Wanted {
                shared_link: list.iter().any(|f| f == "shared_link"),
                lock: list.iter().any(|f| f == "lock"),
                metadata: !self.metadata_templates().is_empty(),
                collaborations: list.iter().any(|f| f == "has_collaborations"),
            },
        }
    }

    /// The `(scope, template)` pairs asked for as `fields=metadata.<scope>.<template>`.
    pub fn metadata_templates(&self) -> Vec<(&str, &str)> {
        let Repr::Fields(list) = self else { return Vec::new() };
        list.iter().filter_map(|f| f.strip_prefix("metadata.")?.split_once('.')).collect()
    }
}

const MINI_FOLDER: &[&str] = &["type", "id", "sequence_id", "etag", "name"];
const MINI_FILE: &[&str] = &["type", "id", "file_version", "sequence_id", "etag", "sha1", "name"];
const MINI_WEB_LINK: &[&str] = &["type", "id", "sequence_id", "etag", "name", "url"];
const STANDARD_FILE: &[&str] = &[
    "type",
    "id",
    "file_version",
    "sequence_id",
    "etag",
    "sha1",
    "name",
    "description",
    "size",
    "path_collection",
    "created_at",
    "modified_at",
    "trashed_at",
    "purged_at",
    "content_created_at",
    "content_modified_at",
    "created_by",
    "modified_by",
    "owned_by",
    "shared_link",
    "parent",
    "item_status",
];
const STANDARD_FOLDER: &[&str] = &[
    "type",
    "id",
    "sequence_id",
    "etag",
    "name",
    "created_at",
    "modified_at",
    "description",
    "size",
    "path_collection",
    "created_by",
    "modified_by",
    "trashed_at",
    "purged_at",
    "content_created_at",
    "content_modified_at",
    "owned_by",
    "shared_link",
    "folder_upload_email",
    "parent",
    "item_status",
];
const STANDARD_WEB_LINK: &[&str] = &[
    "type",
    "id",
    "sequence_id",
    "etag",
    "name",
    "url",
    "parent",
    "description",
    "path_collection",
    "created_at",
    "modified_at",
    "trashed_at",
    "purged_at",
    "created_by",
    "modified_by",
    "owned_by",
    "shared_link",
    "item_status",
];
const BASE: &[&str] = &["type", "id", "etag"];
const FULL_FILE_EXTRA: &[&str] = &[
    "version_number",
    "permissions",
    "extension",
    "lock",
    "is_package",
    "comment_count",
    "has_collaborations",
    "is_externally_owned",
];
const FULL_FOLDER_EXTRA: &[&str] =
    &["permissions", "sync_state", "has_collaborations", "can_non_owners_invite", "is_externally_owned"];

pub fn user_mini(user: &User) -> Value {
    json!({"type": "user", "id": user.id, "name": user.name, "login": user.login})
}

pub fn folder_mini(a: &Ancestor) -> Value {
    json!(FolderMini::of(a))
}

/// Box's mini folder (`Folder--Mini`), keys in the order a JSON object map keeps them.
#[derive(Serialize)]
struct FolderMini<'a> {
    etag: Option<String>,
    id: String,
    name: &'a str,
    sequence_id: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl FolderMini<'_> {
    fn of(a: &Ancestor) -> FolderMini<'_> {
        let (id, tag) = match a.id {
            0 => ("0".to_string(), None),
            id => (id.to_string(), Some(a.sequence_id.to_string())),
        };
        FolderMini { etag: tag.clone(), id, name: &a.name, sequence_id: tag, kind: "folder" }
    }
}

fn trash_folder_mini() -> Value {
    json!({"type": "folder", "id": "1", "sequence_id": null, "etag": null, "name": "Trash"})
}

fn path_collection(item: &Item, path: &[Ancestor]) -> Value {
    let entries: Vec<Value> =
        if item.status == Status::Trashed { vec![trash_folder_mini()] } else { path.iter().map(folder_mini).collect() };
    json!({"total_count": entries.len(), "entries": entries})
}

pub fn file_version_mini(item: &Item) -> Value {
    json!(VersionMini::of(item))
}

/// Box's mini file version.
#[derive(Serialize)]
struct VersionMini<'a> {
    id: String,
    sha1: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl VersionMini<'_> {
    fn of(item: &Item) -> VersionMini<'_> {
        VersionMini { id: item.version_id.unwrap_or(0).to_string(), sha1: item.sha1.as_deref(), kind: "file_version" }
    }
}

/// Box's `permissions` object of an item: a file's `can_upload` is a new version of it, a
/// folder's a new item in it; the annotation, comment and preview rights are files' only.
#[derive(Serialize)]
struct Permissions {
    #[serde(skip_serializing_if = "Option::is_none")]
    can_annotate: Option<bool>,
    can_apply_watermark: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_comment: Option<bool>,
    can_delete: bool,
    can_download: bool,
    can_invite_collaborator: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_preview: Option<bool>,
    can_rename: bool,
    can_set_share_access: bool,
    can_share: bool,
    can_upload: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_view_annotations_all: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    can_view_annotations_self: Option<bool>,
}

impl Permissions {
    fn of(kind: Kind, p: Perms) -> Permissions {
        let file_only = (kind == Kind::File).then_some(p.preview);
        Permissions {
            can_annotate: file_only,
            can_apply_watermark: false,
            can_comment: file_only,
            can_delete: p.delete,
            can_download: p.download,
            can_invite_collaborator: p.invite,
            can_preview: file_only,
            can_rename: p.rename,
            can_set_share_access: p.set_share_access,
            can_share: p.share,
            can_upload: if kind == Kind::File { p.edit } else { p.upload },
            can_view_annotations_all: file_only,
            can_view_annotations_self: file_only,
        }
    }
}

/// One field's value, borrowed from the rows where it can be: a listing page writes its items
/// straight into the body ([`Source::write`]) without building a tree of each first.
#[derive(Serialize)]
#[serde(untagged)]
enum Field<'a> {
    Str(&'a str),
    OptStr(Option<&'a str>),
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Bool(bool),
    Null,
    Permissions(Permissions),
    Folder(FolderMini<'a>),
    Version(VersionMini<'a>),
    Tree(Value),
}

/// An item as a viewer sees it, what its fields are rendered from: the item, its ancestors as
/// the viewer sees them (root first; empty when they no longer see it), the viewer's rights on
/// it, and the extras the representation's `wanted()` asked for.
pub struct Source<'a> {
    pub item: &'a Item,
    pub path: &'a [Ancestor],
    pub perms: Perms,
    pub ctx: &'a Ctx<'a>,
    pub extras: &'a Extras,
}

impl<'a> Source<'a> {
    /// The item in the `layout` of a representation, as a JSON value.
    pub fn value(&self, layout: &Layout<'_>) -> Value {
        Value::Object(self.fields(layout).map(|(k, v)| (k.to_string(), json!(v))).collect())
    }

    /// What [`Source::value`] renders, written as JSON to `out`.
    pub fn write(&self, out: &mut Vec<u8>, layout: &Layout<'_>) {
        out.push(b'{');
        for (i, (key, value)) in self.fields(layout).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, key).expect("a key serializes");
            out.push(b':');
            serde_json::to_writer(&mut *out, &value).expect("a field serializes");
        }
        out.push(b'}');
    }

    /// The field `key` of this item, or `None` when items of its kind have no such field.
    /// Each field is built only when asked for: a listing page renders a thousand items.
    fn field(&self, key: &str) -> Option<Field<'a>> {
        let Source { item, path, perms, ctx, extras } = *self;
        let root = item.is_root();
        let time = |t: &'a Option<String>| Field::OptStr(t.as_deref());
        let common = match key {
            "type" => Field::Str(item.kind.as_str()),
            "id" if item.id == ctx.viewer_root => Field::Str("0"),
            "id" => Field::Text(item.id.to_string()),
            "sequence_id" | "etag" => Field::OptText(item.etag()),
            "name" => Field::Str(&item.name),
            "description" => Field::Str(&item.description),
            "size" => Field::Int(item.size),
            "path_collection" => Field::Tree(path_collection(item, path)),
            "created_at" => time(&item.created_at),
            "modified_at" => time(&item.modified_at),
            "trashed_at" => time(&item.trashed_at),
            "purged_at" => time(&item.purged_at),
            "content_created_at" => time(&item.content_created_at),
            "content_modified_at" => time(&item.content_modified_at),
            "created_by" if root => Field::Tree(json!({"type": "user", "id": "", "name": "", "login": ""})),
            "created_by" | "modified_by" | "owned_by" => Field::Tree(ctx.owner(item)),
            "shared_link" => {
                extras.shared_link.as_ref().map_or(Field::Null, |l| Field::Tree(shared_link(item, l, ctx)))
            }
            "parent" => path.last().filter(|_| !root).map_or(Field::Null, |a| Field::Folder(FolderMini::of(a))),
            "item_status" => Field::Str(item.status.as_str()),
            "permissions" => Field::Permissions(Permissions::of(item.kind, perms)),
            // No `tags`: the emulator has none, and the spec says a `tags` array has at least one item.
            "has_collaborations" => Field::Bool(extras.has_collaborations),
            "is_externally_owned" => Field::Bool(false),
            _ => return self.kind_field(key),
        };
        Some(common)
    }

    /// The fields only files, only folders or only web links have.
    fn kind_field(&self, key: &str) -> Option<Field<'a>> {
        let Source { item, ctx, extras, .. } = *self;
        let value = match (item.kind, key) {
            (Kind::File, "sha1") => Field::OptStr(item.sha1.as_deref()),
            (Kind::File, "file_version") => Field::Version(VersionMini::of(item)),
            (Kind::File, "version_number") => Field::Text(item.version_number.to_string()),
            (Kind::File, "extension") => Field::Str(extension(&item.name)),
            (Kind::File, "lock") => extras.lock.as_ref().map_or(Field::Null, |l| Field::Tree(lock(l, ctx))),
            (Kind::File, "is_package") => Field::Bool(false),
            (Kind::File, "comment_count") => Field::Int(0),
            (Kind::Folder, "folder_upload_email") => Field::Null,
            (Kind::Folder, "sync_state") => Field::Str("not_synced"),
            (Kind::Folder, "can_non_owners_invite") => Field::Bool(true),
            (Kind::WebLink, "url") => Field::OptStr(item.url.as_deref()),
            _ => return None,
        };
        Some(value)
    }

    /// The item's fields in `layout`, in its order: `(key, value)`.
    fn fields<'k>(&self, layout: &'k Layout<'_>) -> impl Iterator<Item = (&'k str, Field<'a>)> + use<'a, 'k, '_> {
        let keys = match self.item.kind {
            Kind::Folder => &layout.folder,
            Kind::File => &layout.file,
            Kind::WebLink => &layout.web_link,
        };
        keys.iter().filter_map(move |&k| match k {
            METADATA if self.item.kind == Kind::WebLink => None,
            METADATA => Some((k, Field::Tree(item_metadata(self.item, &layout.templates, &self.extras.metadata)))),
            _ => Some((k, self.field(k)?)),
        })
    }
}

/// The key under which the `metadata.<scope>.<template>` instances asked for show.
const METADATA: &str = "metadata";

/// The keys a representation shows for each kind of item, sorted (the order a JSON object map
/// keeps), worked out once for every item rendered alike (a page, an event's audience).
pub struct Layout<'r> {
    folder: Vec<&'r str>,
    file: Vec<&'r str>,
    web_link: Vec<&'r str>,
    templates: Vec<(&'r str, &'r str)>,
}

impl<'r> Layout<'r> {
    pub fn of(repr: &'r Repr) -> Layout<'r> {
        let templates = repr.metadata_templates();
        let keys = |kind: Kind| {
            let mut keys: Vec<&str> = match repr {
                Repr::Mini => match kind {
                    Kind::Folder => MINI_FOLDER.to_vec(),
                    Kind::File => MINI_FILE.to_vec(),
                    Kind::WebLink => MINI_WEB_LINK.to_vec(),
                },
                Repr::Standard => match kind {
                    Kind::Folder => STANDARD_FOLDER.to_vec(),
                    Kind::File => STANDARD_FILE.to_vec(),
                    Kind::WebLink => STANDARD_WEB_LINK.to_vec(),
                },
                Repr::Full => match kind {
                    Kind::Folder => [STANDARD_FOLDER, FULL_FOLDER_EXTRA].concat(),
                    Kind::File => [STANDARD_FILE, FULL_FILE_EXTRA].concat(),
                    Kind::WebLink => STANDARD_WEB_LINK.to_vec(),
                },
                Repr::Fields(list) => BASE.iter().copied().chain(list.iter().map(String::as_str)).collect(),
            };
            keys.retain(|k| *k != METADATA);
            if !templates.is_empty() {
                keys.push(METADATA);
            }
            keys.sort_unstable();
            keys.dedup();
            keys
        };
        Layout { folder: keys(Kind::Folder), file: keys(Kind::File), web_link: keys(Kind::WebLink), templates }
    }
}

fn extension(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if i > 0 => &name[i + 1..],
        _ => "",
    }
}

/// The mini item Box puts in `context_info.conflicts` of a 409.
pub fn conflict_entry(it: &Item) -> Value {
    let ctx = Ctx { base_url: "", viewer_root: -1, users: &[] };
    let source = Source { item: it, path: &[], perms: Perms::default(), ctx: &ctx, extras: &Extras::default() };
    source.value(&Layout::of(&Repr::Mini))
}

/// `metadata: {scope: {template: instance}}` for the templates asked for that the item has.
fn item_metadata(item: &Item, templates: &[(&str, &str)], instances: &[MetadataInstance]) -> Value {
    let mut by_scope = Map::new();
    for m in instances {
        let scope_matches = |s: &str| s == m.scope || (s == "enterprise" && m.scope.starts_with("enterprise_"));
        if templates.iter().any(|(s, t)| scope_matches(s) && *t == m.template) {
            let scope = by_scope.entry(m.scope.clone()).or_insert_with(|| json!({}));
            scope[&m.template] = metadata_instance(item, m);
        }
    }
    Value::Object(by_scope)
}

/// A metadata instance as Box returns it (`Metadata--Full`): the `$` fields, then the user's.
pub fn metadata_instance(item: &Item, m: &MetadataInstance) -> Value {
    let mut out = Map::new();
    out.insert("$id".into(), json!(m.instance_id));
    out.insert("$type".into(), json!(format!("{}-{PROPERTIES_TYPE_ID}", m.template)));
    out.insert("$parent".into(), json!(format!("{}_{}", item.kind.as_str(), item.id)));
    out.insert("$scope".into(), json!(m.scope));
    out.insert("$template".into(), json!(m.template));
    out.insert("$version".into(), json!(m.version));
    out.insert("$typeVersion".into(), json!(0));
    out.insert("$canEdit".into(), json!(true));
    out.extend(m.data.clone());
    Value::Object(out)
}

/// The id part of the `$type` of `global.properties` instances.
const PROPERTIES_TYPE_ID: &str = "6bcba49f-ca6d-4d2a-a758-57fe6edf44d0";

/// The download URL of a shared file's link (served at `/shared/static/`).
pub fn shared_download_url(item: &Item, l: &SharedLink, base_url: &str) -> Option<String> {
    (item.kind == Kind::File).then(|| {
        let ext = extension(&item.name);
        let dot = if ext.is_empty() { String::new() } else { format!(".{ext}") };
        format!("{base_url}/shared/static/{}{dot}", l.token)
    })
}

/// A shared link object; its URLs are served by the emulator (`/s/`, `/v/`, `/shared/static/`).
fn shared_link(item: &Item, l: &SharedLink, ctx: &Ctx<'_>) -> Value {
    let download_url = shared_download_url(item, l, ctx.base_url);
    let permission = if l.can_edit {
        "can_edit"
    } else if l.can_download {
        "can_download"
    } else {
        "can_preview"
    };
    json!({
        "url": format!("{}/s/{}", ctx.base_url, l.token),
        "download_url": download_url,
        "vanity_url": l.vanity_name.as_ref().map(|v| format!("{}/v/{v}", ctx.base_url)),
        "vanity_name": l.vanity_name,
        "access": l.access,
        "effective_access": l.access,
        "effective_permission": permission,
        "unshared_at": l.unshared_at,
        "is_password_enabled": l.password.is_some(),
        "permissions": {"can_download": l.can_download, "can_preview": true, "can_edit": l.can_edit},
        "download_count": l.download_count,
        "preview_count": l.preview_count,
    })
}

/// A lock object; `expired_at` only when the lock expires.
fn lock(l: &Lock, ctx: &Ctx<'_>) -> Value {
    let holder = ctx.user_by_id(&l.holder_id);
    let mut out = json!({
        "type": "lock", "id": l.id.to_string(), "created_by": holder, "created_at": l.created_at,
        "is_download_prevented": l.is_download_prevented, "app_type": null,
    });
    if let Some(t) = &l.expires_at {
        out["expired_at"] = json!(t);
    }
    out
}

/// `full` cut down to `base` and the asked fields when `repr` is `fields=`, else whole.
fn pick(full: Value, repr: &Repr, base: &[&str]) -> Value {
    let (Repr::Fields(list), Value::Object(mut all)) = (repr, full.clone()) else { return full };
    let keys = base.iter().copied().chain(list.iter().map(String::as_str));
    Value::Object(keys.filter_map(|k| Some((k.to_string(), all.remove(k)?))).collect())
}

/// A file version (`FileVersion--Full`, or `fields=`) of a file owned by `user`.
pub fn version(v: &Version, user: &User, repr: &Repr) -> Value {
    pick(version_full(v, user), repr, &["type", "id"])
}

/// The user (`User--Full`, or `fields=`).
pub fn user(user: &User, space_used: i64, repr: &Repr) -> Value {
    pick(user_full(user, space_used), repr, &["type", "id"])
}

fn version_full(v: &Version, user: &User) -> Value {
    json!({
        "type": "file_version", "id": v.id.to_string(), "sha1": v.sha1, "name": v.name, "size": v.size,
        "created_at": v.created_at, "modified_at": v.modified_at, "modified_by": user_mini(user),
        "trashed_at": v.trashed_at, "restored_at": null,
        "purged_at": null, "uploader_display_name": user.name, "version_number": v.version_number.to_string(),
    })
}

fn user_full(user: &User, space_used: i64) -> Value {
    let role = match user.role {
        UserRole::Admin => "admin",
        UserRole::User | UserRole::Service => "user",
    };
    json!({
        "type": "user", "id": user.id, "name": user.name, "login": user.login,
        "created_at": user.created_at, "modified_at": user.created_at,
        "language": "en", "timezone": "UTC", "space_amount": user.space_amount, "space_used": space_used,
        "max_upload_size": user.max_upload_size, "status": "active", "job_title": "", "phone": "",
        "address": "", "avatar_url": "", "notification_email": null, "role": role,
        "is_platform_access_only": false, "is_sync_enabled": true, "can_see_managed_users": role == "admin",
        "enterprise": {"type": "enterprise", "id": ENTERPRISE_ID, "name": "boxfs emulator"},
    })
}

/// A user as collaborations name them (`User--Collaborations`).
fn user_collab(user: &Value) -> Value {
    let mut out = user.clone();
    out["is_active"] = json!(true);
    out
}

/// A collaboration (`Collaboration`, or `fields=`); `item` is the collaborated item (mini),
/// `None` when it is gone.
pub fn collaboration(c: &Collaboration, item: Option<Value>, ctx: &Ctx<'_>, repr: &Repr) -> Value {
    let accessible_by = match &c.user_id {
        Some(id) => user_collab(&ctx.user_by_id(id)),
        None => Value::Null,
    };
    let full = json!({
        "type": "collaboration", "id": c.id.to_string(), "item": item, "app_item": null,
        "accessible_by": accessible_by, "invite_email": c.invite_email, "role": c.role.as_str(),
        "expires_at": c.expires_at, "is_access_only": false, "status": c.status.as_str(),
        "acknowledged_at": c.acknowledged_at, "created_by": user_collab(&ctx.user_by_id(&c.created_by)),
        "created_at": c.created_at, "modified_at": c.modified_at,
        "acceptance_requirements_status": {
            "terms_of_service_requirement": {"is_accepted": null},
            "strong_password_requirement": {"enterprise_has_strong_password_required_for_external_users": false,
                "user_has_strong_password": null},
            "two_factor_authentication_requirement": {"enterprise_has_two_factor_auth_enabled": false,
                "user_has_two_factor_authentication_enabled": null},
        },
    });
    // Not nullable in Box's schema: absent until there is one (a pending invitation of a
    // login nobody has yet, an invitation not answered yet).
    let mut full = full;
    for key in ["accessible_by", "acknowledged_at"] {
        if full[key].is_null() {
            full.as_object_mut().expect("object").remove(key);
        }
    }
    pick(full, repr, &["type", "id"])
}
