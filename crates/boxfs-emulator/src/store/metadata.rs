//! Metadata instances on files and folders. The emulator knows one template, Box's free-form
//! `global.properties`, which takes any keys (not starting with `$`) whose values are strings,
//! integers, numbers or arrays of strings (the spec's `MetadataInstanceValue`). Instances are
//! created whole (409 `tuple_already_exists` when one exists), read, changed with a JSON Patch
//! applied atomically (`$version` goes up by one per changing patch) and deleted; each change
//! records Box's `METADATA_INSTANCE_*` event. Other templates do not exist (404
//! `instance_tuple_not_found`).

use super::events::record;
use super::extras::{metadata_from_row, MetadataInstance};
use super::item::{load_active, Kind};
use super::locks::refuse_if_locked;
use super::{random_hex, Store, StoreError, StoreResult, ENTERPRISE_ID};
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};

/// A JSON Patch operation on an instance (RFC 6902), top-level keys only.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct PatchOp {
    pub op: String,
    pub path: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub from: Option<String>,
}

fn missing_instance() -> StoreError {
    StoreError::Missing { code: "instance_not_found", message: "Instance not found for the given template".into() }
}

fn schema_error(message: impl Into<String>) -> StoreError {
    StoreError::bad_request("schema_validation_failed", message)
}

/// Checks `scope` and `template` name a template that exists; returns the scope as Box writes
/// it in instances (`enterprise` becomes `enterprise_{id}`).
fn template(scope: &str, template: &str) -> StoreResult<String> {
    let scope = match scope {
        "global" => "global".to_string(),
        "enterprise" => format!("enterprise_{ENTERPRISE_ID}"),
        s if s
            .strip_prefix("enterprise_")
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())) =>
        {
            s.to_string()
        }
        s => return Err(StoreError::bad_request("bad_request", format!("Invalid metadata scope '{s}'"))),
    };
    if scope == "global" && template == "properties" {
        Ok(scope)
    } else {
        Err(StoreError::Missing {
            code: "instance_tuple_not_found",
            message: format!("The metadata template {scope}.{template} was not found"),
        })
    }
}

/// A value `global.properties` accepts.
fn valid_value(v: &Value) -> bool {
    match v {
        Value::String(_) | Value::Number(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    }
}

fn check_entry(key: &str, value: &Value) -> StoreResult<()> {
    if key.is_empty() || key.starts_with('$') {
        return Err(schema_error(format!("'{key}' is not a valid key for the properties template")));
    }
    if !valid_value(value) {
        return Err(schema_error(format!(
            "Invalid value for '{key}': a string, a number or an array of strings is expected"
        )));
    }
    Ok(())
}

fn load(conn: &Connection, item_id: i64, scope: &str, template: &str) -> StoreResult<Option<MetadataInstance>> {
    Ok(conn
        .query_row(
            "SELECT scope, template, instance_id, version, data FROM metadata_instances
             WHERE item_id = ?1 AND scope = ?2 AND template = ?3",
            (item_id, scope, template),
            |r| metadata_from_row(r, 0),
        )
        .optional()?)
}

fn save(tx: &Transaction<'_>, item_id: i64, m: &MetadataInstance) -> StoreResult<()> {
    tx.execute(
        "INSERT OR REPLACE INTO metadata_instances(item_id, scope, template, instance_id, version, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (item_id, &m.scope, &m.template, &m.instance_id, m.version, Value::Object(m.data.clone()).to_string()),
    )?;
    Ok(())
}

/// A UUID-shaped instance id.
fn new_instance_id() -> String {
    let h = random_hex(16).to_lowercase();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Copies every metadata instance of `from` onto `to` (a copied item keeps its metadata).
pub(super) fn copy_instances(tx: &Transaction<'_>, from: i64, to: i64) -> StoreResult<()> {
    let instances: Vec<MetadataInstance> = {
        let mut stmt = tx.prepare_cached(
            "SELECT scope, template, instance_id, version, data FROM metadata_instances WHERE item_id = ?1",
        )?;
        let rows = stmt.query_map([from], |r| metadata_from_row(r, 0))?;
        rows.collect::<Result<_, _>>()?
    };
    for m in instances {
        save(tx, to, &MetadataInstance { instance_id: new_instance_id(), version: 0, ..m })?;
    }
    Ok(())
}

/// The key a top-level JSON Pointer names (`/key`, with `~1` and `~0` unescaped).
fn pointer_key(path: &str) -> StoreResult<String> {
    let key = path
        .strip_prefix('/')
        .filter(|k| !k.contains('/'))
        .ok_or_else(|| StoreError::bad_request("bad_request", format!("'{path}' is not a top-level JSON Pointer")))?;
    Ok(key.replace("~1", "/").replace("~0", "~"))
}

/// Applies `ops` to `data` in order, all or nothing.
fn patch(data: &Map<String, Value>, ops: &[PatchOp]) -> StoreResult<Map<String, Value>> {
    let mut out = data.clone();
    for op in ops {
        let key = pointer_key(&op.path)?;
        let value = || {
            op.value.clone().ok_or_else(|| StoreError::bad_request("bad_request", format!("'{}' needs a value", op.op)))
        };
        let absent = || StoreError::bad_request("bad_request", format!("There is no value at '{}'", op.path));
        let from = || -> StoreResult<String> {
            pointer_key(
                op.from
                    .as_deref()
                    .ok_or_else(|| StoreError::bad_request("bad_request", format!("'{}' needs from", op.op)))?,
            )
        };
        match op.op.as_str() {
            "add" => {
                let v = value()?;
                check_entry(&key, &v)?;
                out.insert(key, v);
            }
            "replace" => {
                let v = value()?;
                check_entry(&key, &v)?;
                *out.get_mut(&key).ok_or_else(absent)? = v;
            }
            "remove" => {
                out.remove(&key).ok_or_else(absent)?;
            }
            "test" => {
                if out.get(&key) != Some(&value()?) {
                    return Err(StoreError::Conflict {
                        code: "conflict",
                        message: format!("The test at '{}' failed; nothing was changed", op.path),
                    });
                }
            }
            "move" => {
                let v = out.remove(&from()?).ok_or_else(absent)?;
                check_entry(&key, &v)?;
                out.insert(key, v);
            }
            "copy" => {
                let v = out.get(&from()?).cloned().ok_or_else(absent)?;
                check_entry(&key, &v)?;
                out.insert(key, v);
            }
            other => {
                return Err(StoreError::bad_request("bad_request", format!("'{other}' is not a JSON Patch operation")))
            }
        }
    }
    Ok(out)
}

impl Store {
    /// `POST /files|folders/{id}/metadata/{scope}/{template}`.
    pub fn create_metadata(
        &self,
        actor: &str,
        kind: Kind,
        item_id: i64,
        scope: &str,
        template_key: &str,
        data: Map<String, Value>,
    ) -> StoreResult<MetadataInstance> {
        let scope = template(scope, template_key)?;
        for (k, v) in &data {
            check_entry(k, v)?;
        }
        self.write(|tx| {
            let item = load_active(tx, kind, item_id)?;
            refuse_if_locked(tx, &item, actor)?;
            if load(tx, item.id, &scope, template_key)?.is_some() {
                return Err(StoreError::Conflict {
                    code: "tuple_already_exists",
                    message: "An instance of the metadata template already exists on the item".into(),
                });
            }
            let instance = MetadataInstance {
                scope: scope.clone(),
                template: template_key.to_string(),
                instance_id: new_instance_id(),
                version: 0,
                data,
            };
            save(tx, item.id, &instance)?;
            record(tx, self, actor, "METADATA_INSTANCE_CREATE", item.id)?;
            Ok(instance)
        })
    }

    /// `GET /files|folders/{id}/metadata/{scope}/{template}`.
    pub fn get_metadata(
        &self,
        kind: Kind,
        item_id: i64,
        scope: &str,
        template_key: &str,
    ) -> StoreResult<MetadataInstance> {
        let scope = template(scope, template_key)?;
        self.read(|c| {
            let item = load_active(c, kind, item_id)?;
            load(c, item.id, &scope, template_key)?.ok_or_else(missing_instance)
        })
    }

    /// `GET /files|folders/{id}/metadata`: every instance on the item.
    pub fn list_metadata(&self, kind: Kind, item_id: i64) -> StoreResult<Vec<MetadataInstance>> {
        let item = self.get_active(kind, item_id)?;
        Ok(self.extras_of(&item, super::Wanted { metadata: true, ..Default::default() })?.metadata)
    }

    /// `PUT …/metadata/{scope}/{template}` with a JSON Patch.
    pub fn update_metadata(
        &self,
        actor: &str,
        kind: Kind,
        item_id: i64,
        scope: &str,
        template_key: &str,
        ops: &[PatchOp],
    ) -> StoreResult<MetadataInstance> {
        let scope = template(scope, template_key)?;
        self.write(|tx| {
            let item = load_active(tx, kind, item_id)?;
            refuse_if_locked(tx, &item, actor)?;
            let mut instance = load(tx, item.id, &scope, template_key)?.ok_or_else(missing_instance)?;
            let data = patch(&instance.data, ops)?;
            if data != instance.data {
                instance.data = data;
                instance.version += 1;
                save(tx, item.id, &instance)?;
                record(tx, self, actor, "METADATA_INSTANCE_UPDATE", item.id)?;
            }
            Ok(instance)
        })
    }

    /// `DELETE …/metadata/{scope}/{template}`.
    pub fn delete_metadata(
        &self,
        actor: &str,
        kind: Kind,
        item_id: i64,
        scope: &str,
        template_key: &str,
    ) -> StoreResult<()> {
        let scope = template(scope, template_key)?;
        self.write(|tx| {
            let item = load_active(tx, kind, item_id)?;
            refuse_if_locked(tx, &item, actor)?;
            let deleted = tx.execute(
                "DELETE FROM metadata_instances WHERE item_id = ?1 AND scope = ?2 AND template = ?3",
                (item.id, &scope, template_key),
            )?;
            if deleted == 0 {
                return Err(missing_instance());
            }
            record(tx, self, actor, "METADATA_INSTANCE_DELETE", item.id)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> Vec<PatchOp> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn patches_apply_in_order_or_not_at_all() {
        let data = json!({"a": "1", "n": 5}).as_object().unwrap().clone();
        let out = patch(
            &data,
            &ops(json!([
                {"op": "test", "path": "/a", "value": "1"},
                {"op": "replace", "path": "/a", "value": "2"},
                {"op": "add", "path": "/b~1c", "value": ["x", "y"]},
                {"op": "move", "from": "/n", "path": "/m"},
                {"op": "copy", "from": "/a", "path": "/d"},
                {"op": "remove", "path": "/d"},
            ])),
        )
        .unwrap();
        assert_eq!(Value::Object(out), json!({"a": "2", "b/c": ["x", "y"], "m": 5}));
        for bad in [
            json!([{"op": "test", "path": "/a", "value": "9"}]),
            json!([{"op": "replace", "path": "/zz", "value": "1"}]),
            json!([{"op": "add", "path": "/$id", "value": "1"}]),
            json!([{"op": "add", "path": "/o", "value": {"nested": true}}]),
            json!([{"op": "add", "path": "a", "value": "1"}]),
            json!([{"op": "frobnicate", "path": "/a"}]),
        ] {
            assert!(patch(&data, &ops(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_global_properties_exists() {
        assert_eq!(template("global", "properties").unwrap(), "global");
        assert!(matches!(
            template("global", "other"),
            Err(StoreError::Missing { code: "instance_tuple_not_found", .. })
        ));
        assert!(matches!(template("enterprise", "x"), Err(StoreError::Missing { .. })));
        assert!(matches!(template("nope", "properties"), Err(StoreError::BadRequest { .. })));
    }
}
