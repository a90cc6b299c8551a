"""Certificates and keys of the e2e control plane, made with the openssl command line.

One CA signs the API server's serving certificate (valid for 127.0.0.1 and the in-cluster
names) and one admin client certificate in `system:masters`; a separate RSA key signs
service-account tokens. A second CA signs the front proxy's client certificate, with which the
API server forwards requests to an aggregated API (the custom metrics API of prometheus-adapter),
and the adapter's serving certificate. Made once per world and kept under `.e2e/run/pki`.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

_SERVER_EXT = (
    "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
    "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
    "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
)
_CLIENT_EXT = "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
FRONT_PROXY_CLIENT = "front-proxy-client"
"""The name an aggregated API server accepts forwarded requests from (--requestheader-allowed-names)."""
ADAPTER_SERVICE = ("kube-system", "prometheus-adapter")
"""The Service that the custom metrics APIService names; the API server checks the adapter's
certificate against `<name>.<namespace>.svc`."""
_ADAPTER_EXT = (
    f"subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:{ADAPTER_SERVICE[1]}.{ADAPTER_SERVICE[0]}.svc\n"
    "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
)


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def _signed(cwd: Path, name: str, subject: str, ext: str, ca: str = "ca") -> None:
    (cwd / f"{name}.ext").write_text(ext)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject, cwd=cwd)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "3650", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=cwd)


def ensure(pki: Path) -> Path:
    """Creates the PKI under `pki` unless it is complete already; returns `pki`."""
    wanted = ["ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key", "sa.key", "sa.pub",
              "front-proxy-ca.crt", "front-proxy-client.crt", "front-proxy-client.key", "adapter.crt", "adapter.key"]
    if all((pki / f).exists() for f in wanted):
        return pki
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "3650", "-subj", "/CN=modelrollout-e2e-ca", cwd=pki)
    _signed(pki, "apiserver", "/CN=kube-apiserver", _SERVER_EXT)
    _signed(pki, "admin", "/O=system:masters/CN=modelrollout-e2e-admin", _CLIENT_EXT)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "front-proxy-ca.key",
             "-out", "front-proxy-ca.crt", "-days", "3650", "-subj", "/CN=modelrollout-e2e-front-proxy-ca", cwd=pki)
    _signed(pki, "front-proxy-client", f"/CN={FRONT_PROXY_CLIENT}", _CLIENT_EXT, ca="front-proxy-ca")
    _signed(pki, "adapter", "/CN=prometheus-adapter", _ADAPTER_EXT)
    return pki


def loopback_tls(folder: Path) -> Path:
    """A CA of its own, a serving certificate for 127.0.0.1 and localhost, and a client
    certificate, for a TLS endpoint a test runs (Prometheus with --web.config.file); returns `folder`."""
    wanted = ["ca.crt", "server.crt", "server.key", "client.crt", "client.key"]
    if all((folder / f).exists() for f in wanted):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "3650", "-subj", "/CN=modelrollout-e2e-loopback-ca", cwd=folder)
    _signed(folder, "server", "/CN=localhost", _SERVER_EXT)
    _signed(folder, "client", "/CN=modelrollout-operator", _CLIENT_EXT)
    return folder


def kubeconfig(pki: Path, server: str) -> str:
    """An admin kubeconfig that embeds file paths (not data), so it stays readable."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: modelrollout-e2e
  cluster:
    server: {server}
    certificate-authority: {pki / 'ca.crt'}
users:
- name: admin
  user:
    client-certificate: {pki / 'admin.crt'}
    client-key: {pki / 'admin.key'}
contexts:
- name: modelrollout-e2e
  context: {{cluster: modelrollout-e2e, user: admin}}
current-context: modelrollout-e2e
"""


def write_token_kubeconfig(path: Path, cluster: dict[str, Any], user: str, token: str, namespace: str) -> Path:
    """A kubeconfig that authenticates with a bearer token (a ServiceAccount's), readable by its owner only.

    `cluster` is a kubeconfig cluster entry's body (server, certificate-authority); the context's
    namespace is `namespace`. JSON is valid YAML, so every client reads it.
    """
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": user,
        "clusters": [{"name": "world", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "world", "user": user, "namespace": namespace}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=stat.S_IRUSR | stat.S_IWUSR)
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    path.write_text(json.dumps(config, indent=1))
    return path
