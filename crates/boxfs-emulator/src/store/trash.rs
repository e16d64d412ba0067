//! Trash: deleting moves an item (and its subtree) to the trash; restore brings it back
//! (optionally renamed or into another folder); purge deletes it for good.

use super::events::record;
use super::item::{bump, load_kind, Item, Kind, Status};
use super::mutate::{active_folder, adjust_sizes, change_tree, check_if_match, ensure_unique, reload};
use super::names::validate_name;
use super::{adjust_space, now_rfc3339, Store, StoreError, StoreResult};

impl Store {
    /// `DELETE /files|folders|web_links/{id}` by `actor`: moves the item to the trash (its
    /// owner's). A non-empty folder needs `recursive`.
    pub fn trash_item(
        &self,
        actor: &str,
        kind: Kind,
        id: i64,
        if_match: Option<&str>,
        recursive: bool,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let item = load_kind(tx, kind, id)?;
            if item.status != Status::Active {
                return Err(kind.not_found());
            }
            if item.is_root() {
                return Err(StoreError::bad_request("bad_request", "The root folder cannot be deleted"));
            }
            check_if_match(&item, if_match)?;
            super::locks::refuse_if_locked(tx, &item, actor)?;
            if kind == Kind::Folder && !recursive {
                let children: i64 =
                    tx.query_row("SELECT COUNT(*) FROM items WHERE parent_id = ?1 AND status = 'active'", [id], |r| {
                        r.get(0)
                    })?;
                if children > 0 {
                    return Err(StoreError::FolderNotEmpty);
                }
            }
            let now = now_rfc3339();
            tx.execute(
                "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL
                     SELECT i.id FROM items i JOIN sub ON i.parent_id = sub.id WHERE i.status = 'active')
                 UPDATE items SET status = 'trashed', trashed_at = ?2 WHERE id IN sub",
                (id, &now),
            )?;
            tx.execute("UPDATE items SET trashed_root = 1 WHERE id = ?1", [id])?;
            adjust_sizes(tx, item.parent_id, -item.size)?;
            bump(tx, id)?;
            record(tx, self, actor, "ITEM_TRASH", id)?;
            Ok(())
        })
    }

    /// `POST /files|folders/{id}`: restores a trashed item, into `parent` when given, else
    /// where it was.
    pub fn restore_item(
        &self,
        actor: &str,
        kind: Kind,
        id: i64,
        name: Option<&str>,
        parent: Option<i64>,
    ) -> StoreResult<Item> {
        if let Some(n) = name {
            validate_name(n)?;
        }
        self.write(|tx| {
            let item = load_kind(tx, kind, id)?;
            if item.status != Status::Trashed || !item.trashed_root {
                return Err(StoreError::NotTrashed);
            }
            let parent = parent.or(item.parent_id).unwrap_or(item.root_id);
            let dest = active_folder(tx, parent).map_err(|_| {
                StoreError::bad_request(
                    "bad_request",
                    "The parent folder is not available; give parent.id to restore elsewhere",
                )
            })?;
            let name = name.unwrap_or(&item.name);
            ensure_unique(tx, parent, name, None, true)?;
            tx.execute(
                "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL
                     SELECT i.id FROM items i JOIN sub ON i.parent_id = sub.id
                     WHERE i.status = 'trashed' AND i.trashed_root = 0)
                 UPDATE items SET status = 'active', trashed_at = NULL WHERE id IN sub",
                [id],
            )?;
            tx.execute(
                "UPDATE items SET trashed_root = 0, parent_id = ?2, name = ?3, name_key = ?4 WHERE id = ?1",
                (id, parent, name, Item::name_key(name)),
            )?;
            adjust_sizes(tx, Some(parent), item.size)?;
            change_tree(tx, &item, dest.root_id)?;
            bump(tx, id)?;
            record(tx, self, actor, "ITEM_UNDELETE_VIA_TRASH", id)?;
            reload(tx, id)
        })
    }

    /// `DELETE /files|folders/{id}/trash`: deletes a trashed item permanently.
    pub fn purge_item(&self, kind: Kind, id: i64) -> StoreResult<()> {
        self.write(|tx| {
            let item = load_kind(tx, kind, id)?;
            if item.status != Status::Trashed || !item.trashed_root {
                return Err(StoreError::NotTrashed);
            }
            const SUBTREE: &str = "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL
                     SELECT i.id FROM items i JOIN sub ON i.parent_id = sub.id WHERE i.status = 'trashed')";
            let freed: i64 = tx.query_row(
                &format!("{SUBTREE} SELECT COALESCE(SUM(size), 0) FROM items WHERE kind = 'file' AND id IN sub"),
                [id],
                |r| r.get(0),
            )?;
            for table in ["shared_links", "locks", "metadata_instances"] {
                tx.execute(&format!("{SUBTREE} DELETE FROM {table} WHERE item_id IN sub"), [id])?;
            }
            tx.execute(
                &format!("{SUBTREE} UPDATE items SET status = 'deleted', purged_at = ?2 WHERE id IN sub"),
                (id, now_rfc3339()),
            )?;
            adjust_space(tx, item.root_id, -freed)?;
            Ok(())
        })
    }

    /// A trashed item that was trashed itself (not only through an ancestor).
    pub fn get_trashed(&self, kind: Kind, id: i64) -> StoreResult<Item> {
        let item = self.get_kind(kind, id)?;
        if item.status == Status::Trashed && item.trashed_root {
            Ok(item)
        } else {
            Err(StoreError::NotFound { what: "trashed item" })
        }
    }
}
