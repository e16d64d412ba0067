"""Many users: managed users (create, get, list), their tokens by client credentials and by the
JWT grant (the SDK's own BoxCCGAuth and BoxJWTAuth), collaborations with Box's roles (what
each role may do, role changes, pending invitations, removal), what the collaborator's root
shows, their events, and the admin acting for a user with As-User."""

import uuid

import requests
from box_sdk_gen import (
    BoxAPIError,
    BoxCCGAuth,
    BoxJWTAuth,
    CCGConfig,
    CreateCollaborationAccessibleBy,
    CreateCollaborationAccessibleByTypeField,
    CreateCollaborationItem,
    CreateCollaborationItemTypeField,
    CreateCollaborationRole,
    CreateFolderParent,
    GetCollaborationsStatus,
    JwtAlgorithm,
    JWTConfig,
    UpdateCollaborationByIdRole,
    UpdateCollaborationByIdStatus,
)
from conftest import CLIENT_ID, CLIENT_SECRET, ORIGIN, api_error, error_code, make_client, upload
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from test_events import events_since, now_position

import pytest

ENTERPRISE_ID = "20180000"


def new_user(client, name="Collaborator"):
    login = f"{uuid.uuid4().hex[:10]}@example.com"
    user = client.users.create_user(name, login=login)
    assert user.login == login and user.id
    return user


def user_client(user_id):
    """A client acting as `user_id` with a token of its own (client credentials, user subject)."""
    return make_client(BoxCCGAuth(CCGConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, user_id=user_id)))


def share(client, item_id, user_id, role, kind=CreateCollaborationItemTypeField.FOLDER):
    return client.user_collaborations.create_collaboration(
        CreateCollaborationItem(type=kind, id=item_id),
        CreateCollaborationAccessibleBy(type=CreateCollaborationAccessibleByTypeField.USER, id=user_id),
        role,
    )


def root_names(client):
    return [e.name for e in client.folders.get_folder_items("0").entries]


def test_users_are_made_listed_and_have_their_own_root(client):
    user = new_user(client, "Root Owner")
    assert client.users.get_user_by_id(user.id).login == user.login
    assert user.id in [u.id for u in client.users.get_users().entries]
    other = user_client(user.id)
    assert other.users.get_user_me().id == user.id
    assert root_names(other) == []
    upload(other, "0", "mine.txt", b"mine")
    assert "mine.txt" not in root_names(client), "each user has a root of their own"
    err = api_error(lambda: client.users.create_user("Again", login=user.login))
    assert err.response_info.status_code == 409 and error_code(err) == "user_login_already_used"
    err = api_error(lambda: other.users.create_user("Nope", login=f"{uuid.uuid4().hex[:8]}@example.com"))
    assert err.response_info.status_code == 403


def test_roles_decide_what_a_collaborator_may_do(client, folder):
    user = new_user(client)
    other = user_client(user.id)
    f = upload(client, folder.id, "doc.txt", b"shared words")
    start = now_position(other)
    collab = share(client, folder.id, user.id, CreateCollaborationRole.VIEWER)
    assert collab.status.value == "accepted" and collab.role.value == "viewer"
    assert collab.accessible_by.id == user.id and collab.item.id == folder.id
    assert folder.name in root_names(other), "a shared folder shows in the collaborator's root"
    seen = other.folders.get_folder_by_id(folder.id, fields=["permissions"])
    assert seen.permissions.can_upload is False and seen.permissions.can_download is True
    assert other.downloads.download_file(f.id).read() == b"shared words"
    err = api_error(lambda: upload(other, folder.id, "new.txt", b"x"))
    assert err.response_info.status_code == 403 and error_code(err) == "access_denied_insufficient_permissions"
    assert api_error(lambda: other.files.delete_file_by_id(f.id)).response_info.status_code == 403
    assert ("COLLAB_ADD_COLLABORATOR", folder.id) in events_since(other, start)

    start = now_position(other)
    changed = client.user_collaborations.update_collaboration_by_id(collab.id, UpdateCollaborationByIdRole.EDITOR)
    assert changed.role.value == "editor"
    assert ("COLLAB_ROLE_CHANGE", folder.id) in events_since(other, start)
    made = upload(other, folder.id, "new.txt", b"from the editor")
    assert made.owned_by.id == client.users.get_user_me().id, "files in a shared folder belong to its owner"
    assert [c.id for c in client.list_collaborations.get_folder_collaborations(folder.id).entries] == [collab.id]

    client.user_collaborations.update_collaboration_by_id(collab.id, UpdateCollaborationByIdRole.PREVIEWER)
    err = api_error(lambda: other.downloads.download_file(f.id))
    assert err.response_info.status_code == 403
    assert [e.name for e in other.folders.get_folder_items(folder.id).entries] == ["doc.txt", "new.txt"]

    client.user_collaborations.update_collaboration_by_id(collab.id, UpdateCollaborationByIdRole.UPLOADER)
    assert api_error(lambda: other.folders.get_folder_items(folder.id)).response_info.status_code == 403
    upload(other, folder.id, "dropped.txt", b"an uploader uploads")

    client.user_collaborations.delete_collaboration_by_id(collab.id)
    assert folder.name not in root_names(other)
    assert api_error(lambda: other.folders.get_folder_by_id(folder.id)).response_info.status_code == 404


def test_pending_invitations_are_accepted_by_the_invitee(client, folder):
    login = f"{uuid.uuid4().hex[:10]}@example.com"
    invite = client.user_collaborations.create_collaboration(
        CreateCollaborationItem(type=CreateCollaborationItemTypeField.FOLDER, id=folder.id),
        CreateCollaborationAccessibleBy(type=CreateCollaborationAccessibleByTypeField.USER, login=login),
        CreateCollaborationRole.EDITOR,
    )
    assert invite.status.value == "pending" and invite.invite_email == login
    user = client.users.create_user("Late Joiner", login=login)
    other = user_client(user.id)
    pending = other.list_collaborations.get_collaborations(GetCollaborationsStatus.PENDING)
    assert [c.id for c in pending.entries] == [invite.id]
    assert folder.name not in root_names(other), "pending invitations give no access"
    accepted = other.user_collaborations.update_collaboration_by_id(
        invite.id, UpdateCollaborationByIdRole.EDITOR, status=UpdateCollaborationByIdStatus.ACCEPTED
    )
    assert accepted.status.value == "accepted" and accepted.acknowledged_at is not None
    assert folder.name in root_names(other)
    assert client.user_collaborations.get_collaboration_by_id(invite.id).status.value == "accepted"


def test_the_admin_acts_for_a_user_with_as_user(client):
    user = new_user(client, "Acted For")
    upload(user_client(user.id), "0", "theirs.txt", b"theirs")
    acting = client.with_as_user_header(user.id)
    assert acting.users.get_user_me().id == user.id
    assert root_names(acting) == ["theirs.txt"]
    made = acting.folders.create_folder("made for them", CreateFolderParent(id="0"))
    assert made.owned_by.id == user.id
    with pytest.raises(BoxAPIError) as caught:
        user_client(user.id).with_as_user_header(client.users.get_user_me().id).users.get_user_me()
    assert caught.value.response_info.status_code == 403


def key_pair(passphrase: bytes):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


def test_jwt_apps_get_tokens_of_the_service_account_and_of_users(client):
    private, public = key_pair(b"jwt-passphrase")
    registered = requests.post(ORIGIN + "/_emulator/public-keys", data=public, timeout=30)
    assert registered.status_code == 201
    kid = registered.json()["id"]
    config = JWTConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        jwt_key_id=kid,
        private_key=private,
        private_key_passphrase="jwt-passphrase",
        enterprise_id=ENTERPRISE_ID,
    )
    service = make_client(BoxJWTAuth(config))
    me = service.users.get_user_me()
    assert me.login.startswith("AutomationUser_")
    user = new_user(client, "JWT User")
    as_user = make_client(BoxJWTAuth(config).with_user_subject(user.id))
    assert as_user.users.get_user_me().id == user.id
    for algorithm in (JwtAlgorithm.RS384, JwtAlgorithm.RS512):
        signed = JWTConfig(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            jwt_key_id=kid,
            private_key=private,
            private_key_passphrase="jwt-passphrase",
            enterprise_id=ENTERPRISE_ID,
            algorithm=algorithm,
        )
        assert make_client(BoxJWTAuth(signed)).users.get_user_me().id == me.id
    # The service account creates users and acts for them.
    made = service.users.create_user("Made By The App", login=f"{uuid.uuid4().hex[:10]}@example.com")
    assert service.with_as_user_header(made.id).users.get_user_me().id == made.id

    wrong = JWTConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        jwt_key_id="nokey000",
        private_key=private,
        private_key_passphrase="jwt-passphrase",
        enterprise_id=ENTERPRISE_ID,
    )
    with pytest.raises(BoxAPIError) as caught:
        make_client(BoxJWTAuth(wrong)).users.get_user_me()
    assert caught.value.response_info.status_code == 400
    other_private, _ = key_pair(b"other")
    forged = JWTConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        jwt_key_id=kid,
        private_key=other_private,
        private_key_passphrase="other",
        enterprise_id=ENTERPRISE_ID,
    )
    with pytest.raises(BoxAPIError) as caught:
        make_client(BoxJWTAuth(forged)).users.get_user_me()
    assert caught.value.response_info.status_code == 400, "a key the app did not register is refused"


def test_a_file_collaboration(client, folder):
    user = new_user(client)
    f = upload(client, folder.id, "single.txt", b"just this one")
    collab = share(client, f.id, user.id, CreateCollaborationRole.VIEWER, CreateCollaborationItemTypeField.FILE)
    other = user_client(user.id)
    assert "single.txt" in root_names(other)
    assert [c.id for c in client.list_collaborations.get_file_collaborations(f.id).entries] == [collab.id]
    assert other.downloads.download_file(f.id).read() == b"just this one"
    assert api_error(lambda: other.folders.get_folder_by_id(folder.id)).response_info.status_code == 404
