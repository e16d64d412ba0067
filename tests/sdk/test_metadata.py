"""Metadata instances of global.properties on files and folders: create, get, list, JSON-Patch
update, delete; fields=metadata.global.properties in item GETs and folder listings; Box's
errors and events."""

from box_sdk_gen import (
    CreateFileMetadataByIdScope,
    CreateFolderMetadataByIdScope,
    CreateFolderParent,
    DeleteFileMetadataByIdScope,
    DeleteFolderMetadataByIdScope,
    GetFileMetadataByIdScope,
    GetFolderMetadataByIdScope,
    UpdateFileMetadataByIdRequestBody,
    UpdateFileMetadataByIdRequestBodyOpField,
    UpdateFileMetadataByIdScope,
    UpdateFolderMetadataByIdRequestBody,
    UpdateFolderMetadataByIdRequestBodyOpField,
    UpdateFolderMetadataByIdScope,
)
from test_events import events_since, now_position
from conftest import api_error, error_code, upload

GLOBAL = CreateFileMetadataByIdScope.GLOBAL
FIELD = "metadata.global.properties"


def op(kind, path, value=None, from_=None):
    kwargs = {"op": UpdateFileMetadataByIdRequestBodyOpField(kind), "path": path}
    if value is not None:
        kwargs["value"] = value
    if from_ is not None:
        kwargs["from_"] = from_
    return UpdateFileMetadataByIdRequestBody(**kwargs)


def test_file_properties_lifecycle(client, folder):
    start = now_position(client)
    f = upload(client, folder.id, "with metadata.txt", b"m")
    created = client.file_metadata.create_file_metadata_by_id(
        f.id, GLOBAL, "properties", {"boxfs.mode": "100644", "boxfs.uid": 1000, "tags": ["a", "b"]}
    )
    assert created.scope == "global" and created.template == "properties" and created.parent == f"file_{f.id}"
    assert created.version == 0 and created.extra_data["boxfs.mode"] == "100644"
    err = api_error(
        lambda: client.file_metadata.create_file_metadata_by_id(f.id, GLOBAL, "properties", {"x": "1"})
    )
    assert err.response_info.status_code == 409 and error_code(err) == "tuple_already_exists"

    got = client.file_metadata.get_file_metadata_by_id(f.id, GetFileMetadataByIdScope.GLOBAL, "properties")
    assert got.id == created.id and got.extra_data["boxfs.uid"] == 1000
    listed = client.file_metadata.get_file_metadata(f.id)
    assert [m.template for m in listed.entries] == ["properties"]

    updated = client.file_metadata.update_file_metadata_by_id(
        f.id,
        UpdateFileMetadataByIdScope.GLOBAL,
        "properties",
        [
            op("test", "/boxfs.mode", "100644"),
            op("replace", "/boxfs.mode", "100600"),
            op("add", "/boxfs.gid", 100),
            op("remove", "/tags"),
        ],
    )
    assert updated.version == 1
    assert updated.extra_data == {"boxfs.mode": "100600", "boxfs.uid": 1000, "boxfs.gid": 100}
    # A failing test changes nothing.
    err = api_error(
        lambda: client.file_metadata.update_file_metadata_by_id(
            f.id,
            UpdateFileMetadataByIdScope.GLOBAL,
            "properties",
            [op("replace", "/boxfs.mode", "100777"), op("test", "/boxfs.uid", 0)],
        )
    )
    assert err.response_info.status_code == 409
    again = client.file_metadata.get_file_metadata_by_id(f.id, GetFileMetadataByIdScope.GLOBAL, "properties")
    assert again.extra_data["boxfs.mode"] == "100600" and again.version == 1

    # The attributes come with the item and with its folder's listing, in the same call.
    item = client.files.get_file_by_id(f.id, fields=["name", FIELD])
    assert item.metadata.extra_data["global"]["properties"]["boxfs.mode"] == "100600"
    entries = client.folders.get_folder_items(folder.id, fields=["name", FIELD], usemarker=True).entries
    assert [e.metadata.extra_data["global"]["properties"]["boxfs.gid"] for e in entries] == [100]

    client.file_metadata.delete_file_metadata_by_id(f.id, DeleteFileMetadataByIdScope.GLOBAL, "properties")
    err = api_error(
        lambda: client.file_metadata.get_file_metadata_by_id(f.id, GetFileMetadataByIdScope.GLOBAL, "properties")
    )
    assert err.response_info.status_code == 404 and error_code(err) == "instance_not_found"
    assert client.file_metadata.get_file_metadata(f.id).entries == []

    types = [t for t, source in events_since(client, start) if source == f.id]
    assert types == ["ITEM_UPLOAD", "METADATA_INSTANCE_CREATE", "METADATA_INSTANCE_UPDATE", "METADATA_INSTANCE_DELETE"]


def test_folder_properties_and_refusals(client, folder):
    sub = client.folders.create_folder("meta folder", CreateFolderParent(id=folder.id))
    created = client.folder_metadata.create_folder_metadata_by_id(
        sub.id, CreateFolderMetadataByIdScope.GLOBAL, "properties", {"owner": "ops"}
    )
    assert created.parent == f"folder_{sub.id}"
    changed = client.folder_metadata.update_folder_metadata_by_id(
        sub.id,
        UpdateFolderMetadataByIdScope.GLOBAL,
        "properties",
        [
            UpdateFolderMetadataByIdRequestBody(
                op=UpdateFolderMetadataByIdRequestBodyOpField.ADD, path="/team", value="storage"
            )
        ],
    )
    assert changed.extra_data == {"owner": "ops", "team": "storage"}
    got = client.folders.get_folder_by_id(sub.id, fields=[FIELD])
    assert got.metadata.extra_data["global"]["properties"]["team"] == "storage"
    assert client.folder_metadata.get_folder_metadata_by_id(sub.id, GetFolderMetadataByIdScope.GLOBAL, "properties").id
    client.folder_metadata.delete_folder_metadata_by_id(sub.id, DeleteFolderMetadataByIdScope.GLOBAL, "properties")

    # Templates that do not exist, values the template does not take.
    err = api_error(
        lambda: client.folder_metadata.create_folder_metadata_by_id(
            sub.id, CreateFolderMetadataByIdScope.ENTERPRISE, "contract", {"x": "1"}
        )
    )
    assert err.response_info.status_code == 404 and error_code(err) == "instance_tuple_not_found"
    err = api_error(
        lambda: client.folder_metadata.create_folder_metadata_by_id(
            sub.id, CreateFolderMetadataByIdScope.GLOBAL, "properties", {"nested": {"no": "objects"}}
        )
    )
    assert err.response_info.status_code == 400 and error_code(err) == "schema_validation_failed"
    err = api_error(
        lambda: client.folder_metadata.create_folder_metadata_by_id(
            sub.id, CreateFolderMetadataByIdScope.GLOBAL, "properties", {"$id": "reserved"}
        )
    )
    assert err.response_info.status_code == 400
