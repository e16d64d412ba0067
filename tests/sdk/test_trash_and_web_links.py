"""Trash (list with offset and marker, get, restore with a new name or parent, purge) for files,
folders and web links; and web links themselves."""

from box_sdk_gen import (
    CreateFolderParent,
    CreateWebLinkParent,
    RestoreFolderFromTrashParent,
    UpdateWebLinkByIdParent,
)
from conftest import api_error, data, error_code, upload


def trash_ids(client, **kwargs):
    return {e.id for e in client.trashed_items.get_trashed_items(limit=1000, **kwargs).entries}


def test_trash_list_restore_purge(client, folder):
    doomed = client.folders.create_folder("doomed", CreateFolderParent(id=folder.id))
    inside = upload(client, doomed.id, "inside.txt", data(30, 10))
    gone = upload(client, folder.id, "gone.txt", data(31, 20))
    link = client.web_links.create_web_link("https://example.com/", CreateWebLinkParent(id=folder.id), name="ex")
    client.files.delete_file_by_id(gone.id)
    client.folders.delete_folder_by_id(doomed.id, recursive=True)
    client.web_links.delete_web_link_by_id(link.id)

    listed = trash_ids(client)
    assert {gone.id, doomed.id, link.id} <= listed and inside.id not in listed, "only what was deleted itself"
    assert {gone.id, doomed.id, link.id} <= trash_ids(client, usemarker=True)
    assert client.trashed_files.get_trashed_file_by_id(gone.id).item_status.value == "trashed"
    assert client.trashed_folders.get_trashed_folder_by_id(doomed.id).name == "doomed"
    assert client.trashed_web_links.get_trashed_web_link_by_id(link.id).url == "https://example.com/"
    err = api_error(lambda: client.trashed_files.get_trashed_file_by_id(inside.id))
    assert err.response_info.status_code == 404

    # Restore: the file where it was, the folder under a new name elsewhere, the link as is.
    assert client.trashed_files.restore_file_from_trash(gone.id).item_status.value == "active"
    elsewhere = client.folders.create_folder("elsewhere", CreateFolderParent(id=folder.id))
    back = client.trashed_folders.restore_folder_from_trash(
        doomed.id, name="revived", parent=RestoreFolderFromTrashParent(id=elsewhere.id)
    )
    assert back.name == "revived" and back.parent.id == elsewhere.id
    assert [e.id for e in client.folders.get_folder_items(back.id).entries] == [inside.id]
    assert client.trashed_web_links.restore_weblink_from_trash(link.id).item_status.value == "active"
    err = api_error(lambda: client.trashed_files.restore_file_from_trash(gone.id))
    assert err.response_info.status_code == 404 and error_code(err) == "not_trashed"

    # Purge: gone for good.
    client.files.delete_file_by_id(gone.id)
    client.trashed_files.delete_trashed_file_by_id(gone.id)
    client.folders.delete_folder_by_id(back.id, recursive=True)
    client.trashed_folders.delete_trashed_folder_by_id(back.id)
    client.web_links.delete_web_link_by_id(link.id)
    client.trashed_web_links.delete_trashed_web_link_by_id(link.id)
    assert not {gone.id, back.id, link.id} & trash_ids(client)
    assert api_error(lambda: client.files.get_file_by_id(gone.id)).response_info.status_code == 404


def test_web_links(client, folder):
    link = client.web_links.create_web_link(
        "https://www.box.com/", CreateWebLinkParent(id=folder.id), name="Box", description="the real thing"
    )
    assert link.url == "https://www.box.com/" and link.name == "Box" and link.parent.id == folder.id
    got = client.web_links.get_web_link_by_id(link.id)
    assert got.description == "the real thing"
    sub = client.folders.create_folder("sub", CreateFolderParent(id=folder.id))
    changed = client.web_links.update_web_link_by_id(
        link.id, url="https://developer.box.com/", name="Docs", parent=UpdateWebLinkByIdParent(id=sub.id)
    )
    assert changed.url == "https://developer.box.com/" and changed.name == "Docs" and changed.parent.id == sub.id
    listed = client.folders.get_folder_items(sub.id, fields=["name", "url"]).entries
    assert [(e.type.value, e.name) for e in listed] == [("web_link", "Docs")]
    err = api_error(lambda: client.web_links.create_web_link("ftp://nope", CreateWebLinkParent(id=folder.id)))
    assert err.response_info.status_code == 400
