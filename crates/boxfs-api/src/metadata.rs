//! The `global.properties` metadata instance of files and folders (Box's free-form template of
//! key-value pairs): read, create, change with a JSON Patch, delete. Values are the instance's
//! own keys; Box's `$`-prefixed fields (`$id`, `$version`, ...) are left out.

use super::client::{Call, Client};
use super::error::{ApiError, ApiResult};
use reqwest::Method;
use serde::Serialize;
use serde_json::{Map, Value};

/// Which kind of item an instance is on (files and folders are separate id spaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    File,
    Folder,
}

impl ItemKind {
    fn path(self) -> &'static str {
        match self {
            ItemKind::File => "files",
            ItemKind::Folder => "folders",
        }
    }
}

/// One JSON Patch (RFC 6902) operation on a top-level key of an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PatchOp {
    pub op: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl PatchOp {
    /// Sets `key` (adding it, or replacing its value).
    pub fn set(key: &str, value: Value) -> PatchOp {
        PatchOp { op: "add", path: pointer(key), value: Some(value) }
    }

    /// Removes `key` (which must exist).
    pub fn remove(key: &str) -> PatchOp {
        PatchOp { op: "remove", path: pointer(key), value: None }
    }
}

/// `key` as a JSON Pointer (`~` and `/` escaped).
fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The user's keys of an instance as Box returns it.
fn own_keys(instance: Map<String, Value>) -> Map<String, Value> {
    instance.into_iter().filter(|(k, _)| !k.starts_with('$')).collect()
}

impl Client {
    fn properties_url(&self, kind: ItemKind, id: &str) -> String {
        self.api(&format!("/{}/{id}/metadata/global/properties", kind.path()))
    }

    async fn properties_call(
        &self,
        method: Method,
        kind: ItemKind,
        id: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> ApiResult<super::client::Reply> {
        let build = move |r: reqwest::RequestBuilder| match &body {
            Some((content_type, bytes)) => r.header("content-type", *content_type).body(bytes.clone()),
            None => r,
        };
        let url = self.properties_url(kind, id);
        self.execute(&Call { method, url, upload: false, retry_accepted: false, build: &build }).await
    }

    /// The item's `global.properties` keys, or `None` when it has no such instance.
    pub async fn get_properties(&self, kind: ItemKind, id: &str) -> ApiResult<Option<Map<String, Value>>> {
        match self.properties_call(Method::GET, kind, id, None).await {
            Ok(reply) => Ok(Some(own_keys(reply.json()?))),
            Err(ApiError::NotFound { code }) if code.as_deref() == Some("instance_not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the item's `global.properties` instance with `keys` (Box answers 409
    /// `tuple_already_exists` when it has one); returns the instance's keys.
    pub async fn create_properties(
        &self,
        kind: ItemKind,
        id: &str,
        keys: &Map<String, Value>,
    ) -> ApiResult<Map<String, Value>> {
        let body = serde_json::to_vec(keys).map_err(|e| ApiError::Decode(e.to_string()))?;
        let reply = self.properties_call(Method::POST, kind, id, Some(("application/json", body))).await?;
        Ok(own_keys(reply.json()?))
    }

    /// Applies `ops` to the item's `global.properties` instance, all or nothing; returns the
    /// instance's keys.
    pub async fn update_properties(&self, kind: ItemKind, id: &str, ops: &[PatchOp]) -> ApiResult<Map<String, Value>> {
        let body = serde_json::to_vec(ops).map_err(|e| ApiError::Decode(e.to_string()))?;
        let reply = self.properties_call(Method::PUT, kind, id, Some(("application/json-patch+json", body))).await?;
        Ok(own_keys(reply.json()?))
    }

    /// Deletes the item's `global.properties` instance.
    pub async fn delete_properties(&self, kind: ItemKind, id: &str) -> ApiResult<()> {
        self.properties_call(Method::DELETE, kind, id, None).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_ops_escape_keys_as_json_pointers() {
        let ops = [PatchOp::set("a/b~c", Value::from("1")), PatchOp::remove("k")];
        assert_eq!(
            serde_json::to_value(ops).unwrap(),
            serde_json::json!([{"op": "add", "path": "/a~1b~0c", "value": "1"}, {"op": "remove", "path": "/k"}])
        );
    }
}
