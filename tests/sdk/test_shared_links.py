"""Shared links on files, folders and web links: create with an access level, update
(password, unshared_at, permissions), read with fields=shared_link, resolve through
/shared_items, download through the link, remove; and the events Box records."""

import datetime

import requests
from box_sdk_gen import (
    AddShareLinkToFileSharedLink,
    AddShareLinkToFileSharedLinkAccessField,
    AddShareLinkToFileSharedLinkPermissionsField,
    AddShareLinkToFolderSharedLink,
    AddShareLinkToFolderSharedLinkAccessField,
    AddShareLinkToWebLinkSharedLink,
    AddShareLinkToWebLinkSharedLinkAccessField,
    CreateFolderParent,
    CreateWebLinkParent,
    UpdateSharedLinkOnFileSharedLink,
    UpdateSharedLinkOnFileSharedLinkAccessField,
)
from box_sdk_gen.internal.null_value import null
from test_events import events_since, now_position
from conftest import api_error, data, error_code, upload


def boxapi(url, password=None):
    value = f"shared_link={url}"
    return value + (f"&shared_link_password={password}" if password else "")


def test_file_shared_link_lifecycle(client, folder):
    start = now_position(client)
    content = data(50, 4096)
    f = upload(client, folder.id, "shared.pdf", content)
    assert client.shared_links_files.get_shared_link_for_file(f.id, "shared_link").shared_link is None

    shared = client.shared_links_files.add_share_link_to_file(
        f.id,
        "shared_link",
        shared_link=AddShareLinkToFileSharedLink(
            access=AddShareLinkToFileSharedLinkAccessField.OPEN,
            permissions=AddShareLinkToFileSharedLinkPermissionsField(can_download=True),
        ),
    )
    link = shared.shared_link
    assert link.access.value == "open" and link.effective_access.value == "open"
    assert link.permissions.can_download and link.permissions.can_preview and not link.permissions.can_edit
    assert link.is_password_enabled is False and link.download_url.endswith(".pdf")
    assert client.files.get_file_by_id(f.id).shared_link.url == link.url, "standard fields show the link"

    # Anyone with the link: the item through /shared_items, the bytes through the download URL.
    found = client.shared_links_files.find_file_for_shared_link(boxapi(link.url))
    assert found.id == f.id
    assert requests.get(link.download_url, timeout=30).content == content
    assert requests.get(link.url, timeout=30).status_code == 200
    counted = client.shared_links_files.get_shared_link_for_file(f.id, "shared_link").shared_link
    assert counted.download_count == 1 and counted.preview_count == 1

    # A password and an expiry; the link keeps its URL.
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)
    updated = client.shared_links_files.update_shared_link_on_file(
        f.id,
        "shared_link",
        shared_link=UpdateSharedLinkOnFileSharedLink(
            access=UpdateSharedLinkOnFileSharedLinkAccessField.OPEN, password="Secret-123", unshared_at=later
        ),
    ).shared_link
    assert updated.url == link.url and updated.is_password_enabled and updated.unshared_at is not None
    err = api_error(lambda: client.shared_links_files.find_file_for_shared_link(boxapi(link.url)))
    assert err.response_info.status_code == 403
    assert client.shared_links_files.find_file_for_shared_link(boxapi(link.url, "Secret-123")).id == f.id
    assert requests.get(link.download_url, timeout=30).status_code == 403

    # Box's rules: no password on a company link, no weak password.
    err = api_error(
        lambda: client.shared_links_files.update_shared_link_on_file(
            f.id, "shared_link", shared_link=UpdateSharedLinkOnFileSharedLink(password="short")
        )
    )
    assert err.response_info.status_code == 400
    err = api_error(
        lambda: client.shared_links_files.update_shared_link_on_file(
            f.id,
            "shared_link",
            shared_link=UpdateSharedLinkOnFileSharedLink(access=UpdateSharedLinkOnFileSharedLinkAccessField.COMPANY),
        )
    )
    assert err.response_info.status_code == 400

    removed = client.shared_links_files.remove_shared_link_from_file(f.id, "shared_link", shared_link=null)
    assert removed.shared_link is None
    err = api_error(lambda: client.shared_links_files.find_file_for_shared_link(boxapi(link.url, "Secret-123")))
    assert err.response_info.status_code == 404

    types = [t for t, source in events_since(client, start) if source == f.id]
    assert types == ["ITEM_UPLOAD", "ITEM_SHARED_CREATE", "ITEM_SHARED_UPDATE", "ITEM_SHARED_UNSHARE"]


def test_folder_and_web_link_shared_links(client, folder):
    sub = client.folders.create_folder("shared folder", CreateFolderParent(id=folder.id))
    shared = client.shared_links_folders.add_share_link_to_folder(
        sub.id,
        "shared_link",
        shared_link=AddShareLinkToFolderSharedLink(access=AddShareLinkToFolderSharedLinkAccessField.COLLABORATORS),
    ).shared_link
    assert shared.access.value == "collaborators" and shared.download_url is None
    assert shared.permissions.can_download is False and shared.effective_permission.value == "can_preview"
    found = client.shared_links_folders.find_folder_for_shared_link(boxapi(shared.url))
    assert found.id == sub.id and found.name == "shared folder"
    listed = client.folders.get_folder_items(folder.id, fields=["name", "shared_link"]).raw_data["entries"]
    assert [e["shared_link"]["url"] for e in listed if e["id"] == sub.id] == [shared.url]
    client.shared_links_folders.remove_shared_link_from_folder(sub.id, "shared_link", shared_link=null)
    assert client.folders.get_folder_by_id(sub.id, fields=["shared_link"]).shared_link is None

    link = client.web_links.create_web_link("https://example.org/", CreateWebLinkParent(id=folder.id), name="org")
    wl = client.shared_links_web_links.add_share_link_to_web_link(
        link.id,
        "shared_link",
        shared_link=AddShareLinkToWebLinkSharedLink(access=AddShareLinkToWebLinkSharedLinkAccessField.COMPANY),
    ).shared_link
    assert wl.access.value == "company"
    assert client.shared_links_web_links.find_web_link_for_shared_link(boxapi(wl.url)).id == link.id
    assert client.shared_links_web_links.get_shared_link_for_web_link(link.id, "shared_link").shared_link.url == wl.url


def test_a_trashed_item_is_no_longer_shared(client, folder):
    f = upload(client, folder.id, "then trashed.txt", b"x")
    url = client.shared_links_files.add_share_link_to_file(
        f.id, "shared_link", shared_link=AddShareLinkToFileSharedLink()
    ).shared_link.url
    client.files.delete_file_by_id(f.id)
    err = api_error(lambda: client.shared_links_files.find_file_for_shared_link(boxapi(url)))
    assert err.response_info.status_code == 404 and error_code(err) == "not_found"
