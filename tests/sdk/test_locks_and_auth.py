"""File locks (lock, `lock` in fields, unlock, events); and logging in the SDK's ways: OAuth 2.0
authorization code with single-use refresh tokens and revocation, and client credentials."""

import datetime
import io
from urllib.parse import parse_qs, urlparse

import requests
from box_sdk_gen import (
    AuthorizationManager,
    BoxAPIError,
    BoxCCGAuth,
    BoxOAuth,
    CCGConfig,
    GetAuthorizeUrlOptions,
    NetworkSession,
    OAuthConfig,
    PostOAuth2TokenGrantTypeField,
    UpdateFileByIdLock,
    UpdateFileByIdLockAccessField,
    UploadFileVersionAttributes,
)
from box_sdk_gen.internal.null_value import null
from conftest import CLIENT_ID, CLIENT_SECRET, ORIGIN, base_urls, make_client, upload
from test_events import events_since, now_position

import pytest


def test_lock_and_unlock(client, folder):
    start = now_position(client)
    f = upload(client, folder.id, "locked.docx", b"draft")
    assert client.files.get_file_by_id(f.id, fields=["lock"]).lock is None
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    locked = client.files.update_file_by_id(
        f.id,
        lock=UpdateFileByIdLock(access=UpdateFileByIdLockAccessField.LOCK, expires_at=until, is_download_prevented=False),
        fields=["lock"],
    )
    lock = locked.lock
    assert lock.type.value == "lock" and lock.id and lock.created_by.id == client.users.get_user_me().id
    assert lock.expired_at is not None and lock.is_download_prevented is False
    assert client.files.get_file_by_id(f.id).lock is None, "lock is not among the standard fields"
    assert client.files.get_file_by_id(f.id, fields=["lock"]).lock.id == lock.id

    # The holder still writes: a new version and a rename go through.
    client.uploads.upload_file_version(f.id, UploadFileVersionAttributes(name="locked.docx"), io.BytesIO(b"final"))
    client.files.update_file_by_id(f.id, name="final.docx")
    assert client.downloads.download_file(f.id).read() == b"final"

    unlocked = client.files.update_file_by_id(f.id, lock=null, fields=["lock"])
    assert unlocked.lock is None
    types = [t for t, source in events_since(client, start) if source == f.id]
    assert types == ["ITEM_UPLOAD", "LOCK_CREATE", "ITEM_UPLOAD", "ITEM_RENAME", "LOCK_DESTROY"]


def session() -> NetworkSession:
    return NetworkSession(base_urls=base_urls())


def test_oauth_authorization_code_refresh_and_revoke():
    auth = BoxOAuth(OAuthConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    # The SDK builds Box's authorize URL; a user of the emulator asks its own host instead.
    box_url = auth.get_authorize_url(options=GetAuthorizeUrlOptions(redirect_uri="http://127.0.0.1:9/cb", state="xyz"))
    redirect = requests.get(ORIGIN + "/oauth2/authorize?" + urlparse(box_url).query, allow_redirects=False, timeout=30)
    assert redirect.status_code == 302
    query = parse_qs(urlparse(redirect.headers["location"]).query)
    assert query["state"] == ["xyz"]
    first = auth.get_tokens_authorization_code_grant(query["code"][0], network_session=session())
    assert first.refresh_token and first.expires_in > 0

    client = make_client(auth)
    assert client.users.get_user_me().id
    second = auth.refresh_token(network_session=session())
    assert second.refresh_token != first.refresh_token
    # Refresh tokens are single-use.
    manager = AuthorizationManager(network_session=session())
    with pytest.raises(BoxAPIError) as caught:
        manager.request_access_token(
            PostOAuth2TokenGrantTypeField.REFRESH_TOKEN,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            refresh_token=first.refresh_token,
        )
    assert caught.value.response_info.status_code == 400

    # A revoked access token gets a 401; the SDK refreshes once and carries on.
    auth.revoke_token(network_session=session())
    assert client.users.get_user_me().id
    assert auth.retrieve_token().access_token != second.access_token


def test_client_credentials():
    auth = BoxCCGAuth(CCGConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, enterprise_id="20180000"))
    client = make_client(auth)
    assert client.users.get_user_me().id
    wrong = BoxCCGAuth(CCGConfig(client_id=CLIENT_ID, client_secret="wrong", enterprise_id="20180000"))
    with pytest.raises(BoxAPIError) as caught:
        make_client(wrong).users.get_user_me()
    assert caught.value.response_info.status_code == 400
