"""The access pieces that need no broker: the plugin's first state, roles, TLS material."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from commons import access
from commons.dynsec import ADMIN_ROLE, CONTROL_TOPIC, Credentials, write_initial_config
from commons.tlsgen import TlsFiles, ca_fingerprint, ensure_tls, new_ca, server_cert


def test_initial_state_holds_only_an_admin_limited_to_the_control_api(tmp_path: Path) -> None:
    path = tmp_path / "dynsec.json"
    write_initial_config(path, Credentials("admin", "s3cret"))

    assert path.stat().st_mode & 0o777 == 0o600
    state = json.loads(path.read_text())
    (client,) = state["clients"]
    assert client["username"] == "admin"
    assert "s3cret" not in path.read_text()
    salt = base64.b64decode(client["salt"])
    digest = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, client["iterations"])
    assert base64.b64decode(client["password"]) == digest
    (role,) = state["roles"]
    assert role["rolename"] == ADMIN_ROLE
    assert {acl["topic"] for acl in role["acls"]} == {f"{CONTROL_TOPIC}/#"}
    assert state["defaultACLAccess"]["publishClientSend"] is False
    assert state["defaultACLAccess"]["subscribe"] is False


def test_initial_state_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "dynsec.json"
    path.write_text('{"clients": "the broker\'s own"}')
    write_initial_config(path, Credentials("admin", "other"))
    assert path.read_text() == '{"clients": "the broker\'s own"}'


def test_roles_grant_a_node_its_prefix_and_a_gateway_its_status_only() -> None:
    node = access.node_acls("river-1")
    assert [(a.acltype, a.topic) for a in node] == [("publishClientSend", "commons/v1/river-1/+")]
    gateway = {(a.acltype, a.topic) for a in access.gateway_acls("gw-1")}
    sends = {topic for kind, topic in gateway if kind == "publishClientSend"}
    assert sends == {"commons/v1/gateway/gw-1/status"}
    assert ("subscribePattern", "commons/v1/+/+") in gateway
    assert not any(a.acltype == "publishClientSend" for a in access.MONITOR_ACLS)


def test_ensure_tls_generates_once_and_then_keeps_everything(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    files = ensure_tls(folder)
    before = {path: path.read_bytes() for path in vars(files).values()}
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert files.ca_key.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert len(ca_fingerprint(files.ca)) == 64

    ensure_tls(folder)
    assert {path: path.read_bytes() for path in vars(files).values()} == before


def test_a_server_certificate_near_expiry_is_renewed_with_the_same_ca(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    files = ensure_tls(folder)
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    _, old = server_cert(ca_key, ca, ["127.0.0.1"])
    # Rewrite it as if issued long ago: only its validity matters to ensure_tls.
    expiring = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(ca.subject)
        .public_key(old.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(days=800))
        .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
        .sign(ca_key, old.signature_hash_algorithm)
    )
    files.cert.write_bytes(expiring.public_bytes(serialization.Encoding.PEM))
    ca_before = files.ca.read_bytes()

    ensure_tls(folder)

    renewed = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert renewed.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)
    assert files.ca.read_bytes() == ca_before


def test_given_certificates_without_a_ca_key_are_used_as_they_are(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    folder.mkdir()
    files = TlsFiles.under(folder)
    ca_key, ca = new_ca("a community's CA")
    key, cert = server_cert(ca_key, ca, ["gateway.example.org"])
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    given = {path: path.read_bytes() for path in (files.ca, files.cert, files.key)}

    ensure_tls(folder)

    assert {path: path.read_bytes() for path in given} == given
    assert not files.ca_key.exists()
