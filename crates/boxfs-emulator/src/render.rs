//! Renders store rows as Box JSON: the mini, standard and `fields=` representations of files,
//! folders and web links (with their shared link, lock and `metadata.<scope>.<template>`
//! instances), metadata instances, file versions and users.

use super::store::{
    Ancestor, Extras, Item, Kind, Lock, MetadataInstance, SharedLink, Status, UserInfo, Version, Wanted,
};
use serde_json::{json, Map, Value};

/// What rendering needs besides the rows: the user the emulator serves and the origin that
/// shared-link URLs point at.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    pub user: &'a UserInfo,
    pub base_url: &'a str,
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
            Repr::Full => Wanted { shared_link: true, lock: true, metadata: false },
            Repr::Fields(list) => Wanted {
                shared_link: list.iter().any(|f| f == "shared_link"),
                lock: list.iter().any(|f| f == "lock"),
                metadata: !self.metadata_templates().is_empty(),
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

pub fn user_mini(user: &UserInfo) -> Value {
    json!({"type": "user", "id": user.id, "name": user.name, "login": user.login})
}

pub fn folder_mini(a: &Ancestor) -> Value {
    if a.id == 0 {
        json!({"type": "folder", "id": "0", "sequence_id": null, "etag": null, "name": a.name})
    } else {
        json!({"type": "folder", "id": a.id.to_string(), "sequence_id": a.sequence_id.to_string(),
               "etag": a.sequence_id.to_string(), "name": a.name})
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
    json!({"type": "file_version", "id": item.version_id.unwrap_or(0).to_string(), "sha1": item.sha1})
}

fn permissions(kind: Kind) -> Value {
    let mut p = json!({
        "can_delete": true, "can_download": true, "can_invite_collaborator": true, "can_rename": true,
        "can_set_share_access": true, "can_share": true, "can_upload": true, "can_apply_watermark": false,
    });
    if kind == Kind::File {
        let extra = json!({"can_annotate": true, "can_comment": true, "can_preview": true,
            "can_view_annotations_all": true, "can_view_annotations_self": true});
        p.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    }
    p
}

/// Every field the emulator knows for this item.
fn all_fields(item: &Item, path: &[Ancestor], ctx: &Ctx<'_>, extras: &Extras) -> Map<String, Value> {
    let user = ctx.user;
    let root = item.is_root();
    let seq = item.etag();
    let owner = user_mini(user);
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("type", json!(item.kind.as_str()));
    put("id", json!(item.id.to_string()));
    put("sequence_id", json!(seq));
    put("etag", json!(seq));
    put("name", json!(item.name));
    put("description", json!(item.description));
    put("size", json!(item.size));
    put("path_collection", path_collection(item, path));
    put("created_at", json!(item.created_at));
    put("modified_at", json!(item.modified_at));
    put("trashed_at", json!(item.trashed_at));
    put("purged_at", json!(item.purged_at));
    put("content_created_at", json!(item.content_created_at));
    put("content_modified_at", json!(item.content_modified_at));
    put("created_by", if root { json!({"type": "user", "id": "", "name": "", "login": ""}) } else { owner.clone() });
    put("modified_by", owner.clone());
    put("owned_by", owner);
    put("shared_link", extras.shared_link.as_ref().map_or(Value::Null, |l| shared_link(item, l, ctx)));
    put("parent", path.last().filter(|_| !root).map(folder_mini).unwrap_or(Value::Null));
    put("item_status", json!(item.status.as_str()));
    put("permissions", permissions(item.kind));
    // No `tags`: the emulator has none, and the spec says a `tags` array has at least one item.
    put("has_collaborations", json!(false));
    put("is_externally_owned", json!(false));
    match item.kind {
        Kind::File => {
            put("sha1", json!(item.sha1));
            put("file_version", file_version_mini(item));
            put("version_number", json!(item.version_number.to_string()));
            put("extension", json!(extension(&item.name)));
            put("lock", extras.lock.as_ref().map_or(Value::Null, |l| lock(l, ctx)));
            put("is_package", json!(false));
            put("comment_count", json!(0));
        }
        Kind::Folder => {
            put("folder_upload_email", Value::Null);
            put("sync_state", json!("not_synced"));
            put("can_non_owners_invite", json!(true));
        }
        Kind::WebLink => {
            put("url", json!(item.url));
        }
    }
    m
}

fn extension(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if i > 0 => &name[i + 1..],
        _ => "",
    }
}

/// Renders `item` (whose ancestors, root first, are `path`) in representation `repr`, with
/// the `extras` that `repr.wanted()` asked for.
pub fn item(item: &Item, path: &[Ancestor], ctx: &Ctx<'_>, repr: &Repr, extras: &Extras) -> Value {
    let mut all = all_fields(item, path, ctx, extras);
    let keys: Vec<&str> = match repr {
        Repr::Mini => match item.kind {
            Kind::Folder => MINI_FOLDER.to_vec(),
            Kind::File => MINI_FILE.to_vec(),
            Kind::WebLink => MINI_WEB_LINK.to_vec(),
        },
        Repr::Standard => match item.kind {
            Kind::Folder => STANDARD_FOLDER.to_vec(),
            Kind::File => STANDARD_FILE.to_vec(),
            Kind::WebLink => STANDARD_WEB_LINK.to_vec(),
        },
        Repr::Full => match item.kind {
            Kind::Folder => [STANDARD_FOLDER, FULL_FOLDER_EXTRA].concat(),
            Kind::File => [STANDARD_FILE, FULL_FILE_EXTRA].concat(),
            Kind::WebLink => STANDARD_WEB_LINK.to_vec(),
        },
        Repr::Fields(list) => BASE.iter().copied().chain(list.iter().map(String::as_str)).collect(),
    };
    let mut out = Map::new();
    for k in keys {
        if let Some(v) = all.remove(k) {
            out.insert(k.to_string(), v);
        }
    }
    let templates = repr.metadata_templates();
    if !templates.is_empty() && item.kind != Kind::WebLink {
        out.insert("metadata".into(), item_metadata(item, &templates, &extras.metadata));
    }
    Value::Object(out)
}

/// The mini item Box puts in `context_info.conflicts` of a 409.
pub fn conflict_entry(it: &Item) -> Value {
    let ctx = Ctx { user: &UserInfo::default(), base_url: "" };
    item(it, &[], &ctx, &Repr::Mini, &Extras::default())
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

/// A shared link object; its URLs are served by the emulator (`/s/`, `/v/`, `/shared/static/`).
fn shared_link(item: &Item, l: &SharedLink, ctx: &Ctx<'_>) -> Value {
    let download_url = (item.kind == Kind::File).then(|| {
        let ext = extension(&item.name);
        let dot = if ext.is_empty() { String::new() } else { format!(".{ext}") };
        format!("{}/shared/static/{}{dot}", ctx.base_url, l.token)
    });
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
    let holder = if l.holder_id == ctx.user.id {
        user_mini(ctx.user)
    } else {
        json!({"type": "user", "id": l.holder_id, "name": "", "login": ""})
    };
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

/// A file version (`FileVersion--Full`, or `fields=`).
pub fn version(v: &Version, user: &UserInfo, repr: &Repr) -> Value {
    pick(version_full(v, user), repr, &["type", "id"])
}

/// The user (`User--Full`, or `fields=`).
pub fn user(user: &UserInfo, space_used: i64, repr: &Repr) -> Value {
    pick(user_full(user, space_used), repr, &["type", "id"])
}

fn version_full(v: &Version, user: &UserInfo) -> Value {
    json!({
        "type": "file_version", "id": v.id.to_string(), "sha1": v.sha1, "name": v.name, "size": v.size,
        "created_at": v.created_at, "modified_at": v.modified_at, "modified_by": user_mini(user),
        "trashed_at": v.trashed_at, "restored_at": null,
        "purged_at": null, "uploader_display_name": user.name, "version_number": v.version_number.to_string(),
    })
}

fn user_full(user: &UserInfo, space_used: i64) -> Value {
    json!({
        "type": "user", "id": user.id, "name": user.name, "login": user.login,
        "created_at": "2024-01-01T00:00:00+00:00", "modified_at": "2024-01-01T00:00:00+00:00",
        "language": "en", "timezone": "UTC", "space_amount": user.space_amount, "space_used": space_used,
        "max_upload_size": user.max_upload_size, "status": "active", "job_title": "", "phone": "",
        "address": "", "avatar_url": "", "notification_email": null,
    })
}
